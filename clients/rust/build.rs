// Generates the gRPC client stubs from the repository's proto at build time,
// with the protoc that the protoc-bin-vendored crate ships, so that building
// needs nothing but the crates in Cargo.lock.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // proto/ is a link to the repository's proto/ (cargo package copies what
    // it points to into the packaged crate, so the crate builds on its own).
    // Read at run time, not compiled in: a build script built for a copy of
    // this crate elsewhere (a mutant's scratch folder sharing the target
    // folder) must still find this copy's proto.
    let proto = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().build_server(false).compile_with_config(
        config,
        &[
            proto.join("metaparticle/sync/v1/lock_service.proto"),
            proto.join("metaparticle/sync/v1/election_service.proto"),
            proto.join("metaparticle/sync/v1/semaphore_service.proto"),
            proto.join("metaparticle/sync/v1/rwlock_service.proto"),
        ],
        &[proto, protoc_bin_vendored::include_path()?],
    )?;
    Ok(())
}

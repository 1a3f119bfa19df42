//! A singleton job: however many copies run at once, one at a time holds the
//! lock and does the work. Every write carries the lock's fencing token, and
//! the job stops the moment the lock is lost.
//!
//! `cargo run --example lock` beside a sidecar on 127.0.0.1:13131.
use std::time::Duration;

use metaparticle_sync::Client;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::new()?; // $MSYNC_ADDRESS, else 127.0.0.1:13131

    eprintln!("waiting for lock nightly-report");
    let lock = tokio::select! {
        lock = client.lock("nightly-report") => lock?,
        _ = tokio::signal::ctrl_c() => return Ok(()),
    };
    eprintln!("acquired nightly-report with fencing token {}", lock.token());

    for step in 1..=3 {
        tokio::select! {
            loss = lock.lost() => return Err(format!("lost the lock, stopping: {loss}").into()),
            _ = tokio::signal::ctrl_c() => return Ok(()), // dropping the guard releases the lock
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        // A real job passes the token to the store, which refuses a token
        // older than one it has already seen.
        println!("step {step}/3 written with fencing token {}", lock.token());
    }
    eprintln!("done; releasing nightly-report");
    lock.release().await?;
    Ok(())
}

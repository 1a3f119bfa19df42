//! Fencing where the write lands (docs/design.md 3.12): stamp a lock's token
//! on a Kubernetes object before writing it. With the fencing policy
//! installed (deploy/components/fencing), the API server refuses the write if
//! a newer holder of the lock has written the object since.
//!
//! ```
//! use std::collections::BTreeMap;
//! let mut annotations = BTreeMap::new();
//! metaparticle_sync::fencing::stamp(&mut annotations, "orders", 7).unwrap();
//! assert_eq!(annotations["fence.sync.metaparticle.io/orders"], "7");
//! ```

use sha2::{Digest, Sha256};

use crate::Error;

/// The prefix of every fence annotation key; the name part follows it.
pub const ANNOTATION_PREFIX: &str = "fence.sync.metaparticle.io/";

/// The SQLSTATE that sql/fencing.sql raises for a stale token.
pub const STALE_SQLSTATE: &str = "MSF01";

const MAX_KEY_NAME: usize = 63;
const HASH_DIGITS: usize = 16;

/// Whether `name` is a DNS subdomain name (RFC 1123) of at most 253 characters, as lock and election names are.
fn is_lease_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
        })
}

/// The annotation that carries the fence of lock or election `name`:
/// `fence.sync.metaparticle.io/<name>`. A name longer than 63 characters is
/// shortened to its first 46, a dash and the first 16 hex digits of its
/// SHA-256. A name that is not a lock or election name is
/// [`Error::InvalidArgument`] with field `name`.
pub fn annotation_key(name: &str) -> Result<String, Error> {
    if !is_lease_name(name) {
        return Err(Error::invalid(
            "name",
            format!("name: {name:?} is not a lock or election name (a DNS subdomain name, at most 253 characters)"),
        ));
    }
    if name.len() <= MAX_KEY_NAME {
        return Ok(format!("{ANNOTATION_PREFIX}{name}"));
    }
    let hash: String = Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(format!(
        "{ANNOTATION_PREFIX}{}-{}",
        &name[..MAX_KEY_NAME - HASH_DIGITS - 1],
        &hash[..HASH_DIGITS]
    ))
}

/// Sets the fence of lock or election `name` to `token` (the lock's token,
/// the leadership's term, or `MSYNC_FENCING_TOKEN` / `MSYNC_TERM` as the CLI
/// passes them) in an object's annotations (k8s-openapi's
/// `ObjectMeta::annotations` is such a map). A token below 1 is
/// [`Error::InvalidArgument`] with field `token`.
pub fn stamp<M>(annotations: &mut M, name: &str, token: i64) -> Result<(), Error>
where
    M: Extend<(String, String)>,
{
    let key = annotation_key(name)?;
    if token < 1 {
        return Err(Error::invalid(
            "token",
            format!("token: {token} is not a fencing token (a positive integer)"),
        ));
    }
    annotations.extend([(key, token.to_string())]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn annotation_key_is_the_name_or_its_shortened_form() {
        assert_eq!(annotation_key("orders").unwrap(), "fence.sync.metaparticle.io/orders");
        // The same long name shortens to the same key in every client.
        let long = "a".repeat(70);
        assert_eq!(
            annotation_key(&long).unwrap(),
            format!("fence.sync.metaparticle.io/{}-6bd5e5034855a112", "a".repeat(46))
        );
        assert_eq!(annotation_key("Bad Name").unwrap_err().field(), Some("name"));
    }

    #[test]
    fn stamp_sets_the_token_and_keeps_other_annotations() {
        let mut annotations = BTreeMap::from([
            ("other".to_owned(), "x".to_owned()),
            ("fence.sync.metaparticle.io/orders".to_owned(), "3".to_owned()),
        ]);
        stamp(&mut annotations, "orders", 12).unwrap();
        assert_eq!(annotations["fence.sync.metaparticle.io/orders"], "12");
        assert_eq!(annotations["other"], "x");
        assert_eq!(stamp(&mut annotations, "orders", 0).unwrap_err().field(), Some("token"));
    }
}

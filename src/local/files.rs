//! Reading local files: bounded, never blocking, regular files only where a file is expected.

use std::path::Path;

use crate::core::topology::{self, MAX_FILE_BYTES, Topology, TransportKind};
use crate::error::{Error, Problem, Problems};

/// Reads and validates a topology file. `transport` overrides the file's `cluster.transport`.
pub fn load_topology(path: &Path, transport: Option<TransportKind>) -> Result<Topology, Error> {
    let source = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| Error::TopologyRead {
        path: source.clone(),
        source: e,
    })?;
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(Error::Topology(Problems(vec![Problem {
            file: source,
            line: 1,
            column: 1,
            message: format!(
                "file is {} bytes; a topology may be at most {MAX_FILE_BYTES} bytes",
                meta.len()
            ),
        }])));
    }
    // The size above is 0 for a device or a pipe (`/dev/zero`, `/dev/stdin`): never read more
    // than the limit, whatever the file is.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            use std::io::Read;
            f.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes)
        })
        .map_err(|e| Error::TopologyRead {
            path: source.clone(),
            source: e,
        })?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Error::Topology(Problems(vec![Problem {
            file: source,
            line: 1,
            column: 1,
            message: format!(
                "file holds more than {MAX_FILE_BYTES} bytes; a topology may be at most \
                 {MAX_FILE_BYTES} bytes"
            ),
        }])));
    }
    topology::parse(&bytes, &source, transport).map_err(Error::Topology)
}

/// Reads a saved plan file (`routectl plan --out FILE`): its binding, the topology it carries,
/// and the options.
pub fn load_saved_plan(
    path: &Path,
) -> Result<
    (
        crate::core::saved::Binding,
        Topology,
        crate::core::plan::Options,
    ),
    Error,
> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| Error::io(format!("reading the plan file `{shown}`"), e))?;
    crate::core::saved::parse(&bytes, &shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_file_is_read_no_further_than_the_limit() {
        // Regression: `routectl validate -f /dev/zero` read until memory ran out (the size of a
        // device or pipe is 0, so the size check let it through).
        let e = load_topology(Path::new("/dev/zero"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/dev/zero:1:1: file holds more than 16777216 bytes"),
            "{e}"
        );
    }
}

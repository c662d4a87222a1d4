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
    let mut t = topology::parse(&bytes, &source, transport).map_err(Error::Topology)?;
    t.resolve_relative_to(&base_dir(path));
    Ok(t)
}

/// The directory a topology file's relative paths are taken from.
fn base_dir(path: &Path) -> std::path::PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
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
    let (binding, mut topology, options) = crate::core::saved::parse(&bytes, &shown)?;
    topology.resolve_relative_to(&base_dir(Path::new(&binding.topology_path)));
    Ok((binding, topology, options))
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

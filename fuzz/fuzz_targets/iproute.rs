//! Fuzzes the `ip -j` parsers: any bytes -> routes or a clear error, never a panic, and never an
//! empty table from output that is not a JSON array.

#![no_main]

use libfuzzer_sys::fuzz_target;
use routectl::error::ParseError;
use routectl::node::iproute;

fuzz_target!(|data: &[u8]| {
    let one = iproute::parse_routes(data);
    let stream = iproute::parse_stream(data);
    match (&one, &stream) {
        (Ok(routes), Ok(tables)) => {
            assert_eq!(tables.len(), 1);
            assert_eq!(&tables[0], routes);
            for r in routes {
                // Rendering and the ownership rule work on anything parsed.
                let _ = r.to_string();
                let _ = routectl::core::diff::is_owned(r, 211);
            }
        }
        (Err(ParseError::Empty), _) => {
            assert!(data.iter().all(u8::is_ascii_whitespace));
        }
        (Err(e), _) => {
            let _ = e.to_string();
        }
        (Ok(_), Err(e)) => panic!("parse_routes accepted what parse_stream refused: {e}"),
    }
    if let Ok(tables) = &stream {
        assert!(
            !tables.is_empty(),
            "a stream that parses holds at least one table"
        );
    }
    // Non-empty output that is not a JSON array is never read as an empty table.
    if let Ok(routes) = &one
        && routes.is_empty()
    {
        let trimmed: Vec<u8> = data
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        assert_eq!(
            trimmed, b"[]",
            "an empty table from output that is not `[]`"
        );
    }
    let _ = iproute::batch_failures(&String::from_utf8_lossy(data));
    let _ = iproute::parse_version(&String::from_utf8_lossy(data));
});

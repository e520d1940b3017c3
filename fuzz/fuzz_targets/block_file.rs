//! Any bytes as a block file: format detection, framing, header scan, block decode and
//! merkle check must return errors, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut cat = cointrail_chain::Catalog::new();
    if cat.add_bytes(std::path::Path::new("fuzz"), data.to_vec()).is_ok() {
        for e in &cat.entries {
            let _ = cat.load(e, bitcoin::Network::Bitcoin);
        }
    }
});

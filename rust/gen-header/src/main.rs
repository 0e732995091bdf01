// SPDX-License-Identifier: GPL-2.0-or-later
//! `gen-header`: write `include/qemurs.h` from the `capi` crate;
//! `gen-header --check`: fail if the committed header differs from what the
//! code generates (so the header can never drift from the exports).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => {
            eprintln!("usage: gen-header [--check] (unknown argument {other})");
            return ExitCode::from(2);
        }
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let capi = root.join("rust/capi");
    let header = root.join("include/qemurs.h");

    let config = match cbindgen::Config::from_file(capi.join("cbindgen.toml")) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gen-header: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bindings = match cbindgen::Builder::new()
        .with_crate(&capi)
        .with_config(config)
        .generate()
    {
        Ok(b) => b,
        Err(e) => {
            eprintln!("gen-header: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut generated = Vec::new();
    bindings.write(&mut generated);

    if check {
        let committed = std::fs::read(&header).unwrap_or_default();
        if committed != generated {
            eprintln!(
                "gen-header: {} is out of date; run `cargo run -p gen-header` and commit it",
                header.display()
            );
            return ExitCode::FAILURE;
        }
        println!("gen-header: {} is up to date", header.display());
    } else if let Err(e) = std::fs::write(&header, &generated) {
        eprintln!("gen-header: writing {}: {e}", header.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

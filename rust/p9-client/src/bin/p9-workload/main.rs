// SPDX-License-Identifier: GPL-2.0-or-later
//! p9-workload: drive a 9P server on a stream socket (such as
//! `tests/p9serve/p9serve`) with real operations, checking the results
//! against the exported host directory, then feed it malformed frames on
//! fresh connections and check that it answers or drops each, and still
//! serves afterwards.
//!
//! Usage: `p9-workload (unix:PATH | tcp:HOST:PORT) HOSTDIR`
//!
//! Prints one `ok`/`FAIL` line per check and ends with
//! `p9serve workload: N passed, N failed`; exits non-zero on a failure.
//! The export's root must be HOSTDIR and the session runs as root
//! (n_uname 0); the checks work in a fresh subdirectory.

use std::fs;
use std::path::PathBuf;

/// Fail the check with a message unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

mod malformed;
mod operations;
mod runner;

use malformed::malformed;
use operations::operations;
use runner::Runner;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: p9-workload (unix:PATH | tcp:HOST:PORT) HOSTDIR");
        std::process::exit(2);
    }
    let mut r = Runner {
        addr: args[1].clone(),
        host: PathBuf::from(&args[2]),
        passed: 0,
        failed: 0,
    };
    // Replies the client cannot accept panic inside a check; the check
    // reports them, so keep the default hook quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let work = format!("workload-{}", std::process::id());
    let wdir = r.host.join(&work);
    let _ = fs::remove_dir_all(&wdir);
    if let Err(err) = fs::create_dir(&wdir) {
        eprintln!("creating {}: {err}", wdir.display());
        std::process::exit(2);
    }
    fs::write(wdir.join("hello.txt"), b"hello, 9p\n").expect("hello.txt");
    fs::create_dir(wdir.join("many")).expect("many");
    for i in 0..200 {
        fs::write(
            wdir.join(format!("many/entry-{i:03}-{}", "x".repeat(i % 40))),
            b"",
        )
        .expect("dir entry");
    }
    fs::write(
        wdir.join("big.bin"),
        (0..65536u32).map(|i| (i * 7) as u8).collect::<Vec<_>>(),
    )
    .expect("big.bin");

    operations(&mut r, &work, &wdir);
    malformed(&mut r);

    let _ = fs::remove_dir_all(&wdir);
    println!("p9serve workload: {} passed, {} failed", r.passed, r.failed);
    std::process::exit(i32::from(r.failed > 0));
}

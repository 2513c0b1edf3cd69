//! `graft`: the command-line face of the engine (same trainer and event stream as the web app).

mod args;
mod backend;
mod commands;
mod lab;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

// Every layer allocates fresh activation buffers of megabytes: glibc's malloc maps and unmaps
// each one (page faults, TLB shootdowns across the rayon threads: a quarter of the time in a
// profile); mimalloc keeps and reuses them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Convert(a) => commands::convert(&a),
        Command::Train(a) => commands::train(&a),
        Command::Predict(a) => commands::predict(&a),
        Command::Export(a) => commands::export(&a),
        Command::Bench(a) => commands::bench(&a),
        Command::Check(a) => commands::check(&a),
        Command::Compare(a) => lab::compare(&a),
        Command::LrFind(a) => lab::lr_find(&a),
        Command::Report(a) => lab::report(&a),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

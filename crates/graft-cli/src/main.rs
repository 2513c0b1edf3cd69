//! `graft`: the command-line face of the engine (same trainer and event stream as the web app).

mod args;
mod backend;
mod commands;
mod lab;
mod progress;
mod project;
mod recipe;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::args::{Cli, Command};

// Every layer allocates fresh activation buffers of megabytes: glibc's malloc maps and unmaps
// each one (page faults, TLB shootdowns across the rayon threads: a quarter of the time in a
// profile); mimalloc keeps and reuses them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The ids of the arguments given on the command line (not defaults) of the subcommand.
fn given_ids(matches: &ArgMatches) -> Vec<String> {
    let Some((_, sub)) = matches.subcommand() else { return Vec::new() };
    sub.ids()
        .filter(|id| sub.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.as_str().to_string())
        .collect()
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let given = given_ids(&matches);
    match &mut cli.command {
        Command::Train(a) => a.run.given = given,
        Command::Compare(a) => a.run.given = given,
        Command::LrFind(a) => a.run.given = given,
        _ => {}
    }
    let result = match cli.command {
        Command::Convert(a) => commands::convert(&a),
        Command::Train(a) => commands::train(&a),
        Command::Predict(a) => commands::predict(&a),
        Command::Project(c) => project::run(&c),
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

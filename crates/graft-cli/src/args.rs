//! A small flag parser: `--name value`, `--switch`, and positional arguments.

use std::collections::HashMap;
use std::str::FromStr;

pub struct Args {
    pub positional: Vec<String>,
    flags: HashMap<String, Option<String>>,
}

/// Flags that take no value.
const SWITCHES: &[&str] = &["no-augment", "layer-groups", "imagenet", "json", "help"];

impl Args {
    pub fn parse(raw: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut positional = Vec::new();
        let mut flags = HashMap::new();
        let mut raw = raw.peekable();
        while let Some(arg) = raw.next() {
            if let Some(name) = arg.strip_prefix("--") {
                if SWITCHES.contains(&name) {
                    flags.insert(name.to_string(), None);
                } else {
                    let value = raw.next().ok_or_else(|| format!("--{name} needs a value"))?;
                    flags.insert(name.to_string(), Some(value));
                }
            } else {
                positional.push(arg);
            }
        }
        Ok(Self { positional, flags })
    }

    pub fn switch(&self, name: &str) -> bool {
        self.flags.contains_key(name)
    }

    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.flags.get(name) {
            Some(Some(v)) => v.parse().map_err(|e| format!("--{name} {v}: {e}")),
            _ => Ok(default),
        }
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.flags.get(name).cloned().flatten()
    }
}

//! Where a setting's value comes from: a flag, then a `BERTH_*` variable, then the TOML file
//! named by `--config` / `BERTH_CONFIG`, then the default. [`Given`] is what a command line
//! holds of the settings (a clap `Args` built from the declarations); [`Layers`] adds the file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches};

use super::declared::{Declared, Scope, Setting, ALL};
use crate::error::BootError;

/// The settings a command takes, by scope.
pub trait Uses {
    const SCOPES: &'static [Scope];
}

/// `berth serve`: every setting.
#[derive(Debug)]
pub struct ForServe;
/// `berth admin …`: the data and the password rules.
#[derive(Debug)]
pub struct ForAdmin;
/// `berth backup create|verify`, `berth restore`: the data only.
#[derive(Debug)]
pub struct ForData;
/// `berth backup drill`: the data, and what the restored server searches with.
#[derive(Debug)]
pub struct ForDrill;
/// `berth models …`: the data dir (models live in it) and where they come from.
#[derive(Debug)]
pub struct ForModels;

impl Uses for ForServe {
    const SCOPES: &'static [Scope] = &[
        Scope::Data,
        Scope::Passwords,
        Scope::Models,
        Scope::Ranking,
        Scope::Tls,
        Scope::Server,
    ];
}
impl Uses for ForModels {
    const SCOPES: &'static [Scope] = &[Scope::Data, Scope::Tls, Scope::Hub];
}
impl Uses for ForAdmin {
    const SCOPES: &'static [Scope] = &[Scope::Data, Scope::Passwords];
}
impl Uses for ForData {
    const SCOPES: &'static [Scope] = &[Scope::Data];
}
impl Uses for ForDrill {
    const SCOPES: &'static [Scope] = &[Scope::Data, Scope::Models, Scope::Ranking, Scope::Tls];
}

/// Where a setting's value came from, for error messages.
#[derive(Debug, Clone)]
pub enum Origin {
    Flag(String),
    Env(String),
    File { path: PathBuf, line: usize },
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Default => write!(f, "default"),
        }
    }
}

/// The settings a command line (flags and variables) gave, for the scopes `U` names.
pub struct Given<U> {
    scopes: &'static [Scope],
    values: BTreeMap<&'static str, (String, Origin)>,
    config: Option<PathBuf>,
    uses: PhantomData<U>,
}

impl<U> fmt::Debug for Given<U> {
    // Names only: values may be passwords.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Given")
            .field("set", &self.values.keys().collect::<Vec<_>>())
            .field("config", &self.config)
            .finish()
    }
}

fn in_scope(setting: &dyn Declared, scopes: &[Scope]) -> bool {
    scopes.contains(&setting.scope())
}

impl<U: Uses> clap::Args for Given<U> {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        cmd = cmd.arg(
            Arg::new("config")
                .long("config")
                .env("BERTH_CONFIG")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("TOML file with settings (keys named as the flags, with underscores, e.g. `listen = \"0.0.0.0:8080\"`)"),
        );
        for setting in ALL.iter().filter(|s| in_scope(**s, U::SCOPES)) {
            let name = setting.name();
            let mut arg = Arg::new(name)
                .long(name.replace('_', "-"))
                .env(Setting::env_of(name))
                .value_name(setting.value_name())
                .help(setting.help())
                .hide_env_values(setting.secret());
            if !setting.default().is_empty() {
                arg = arg.default_value(setting.default());
            }
            cmd = cmd.arg(arg);
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl<U: Uses> clap::FromArgMatches for Given<U> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut values = BTreeMap::new();
        for setting in ALL.iter().filter(|s| in_scope(**s, U::SCOPES)) {
            let name = setting.name();
            let origin = match matches.value_source(name) {
                Some(ValueSource::CommandLine) => Origin::Flag(Setting::flag_of(name)),
                Some(ValueSource::EnvVariable) => Origin::Env(Setting::env_of(name)),
                // The default, which the file may still override.
                _ => continue,
            };
            if let Some(text) = matches.get_one::<String>(name) {
                values.insert(name, (text.clone(), origin));
            }
        }
        Ok(Given {
            scopes: U::SCOPES,
            values,
            config: matches.get_one::<PathBuf>("config").cloned(),
            uses: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// The config file, parsed as a flat table whose keys must be settings.
struct ConfigFile {
    path: PathBuf,
    text: String,
    table: toml::Table,
}

impl ConfigFile {
    fn read(path: &Path) -> Result<Self, BootError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            BootError::Config(format!(
                "cannot read config file {} ({e}); check the path given by --config / BERTH_CONFIG",
                path.display()
            ))
        })?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            BootError::Config(
                format!(
                    "config file {} is not valid TOML: {}",
                    path.display(),
                    e.message()
                ) + &line_suffix(&text, e.span().map(|s| s.start)),
            )
        })?;
        let file = ConfigFile {
            path: path.to_owned(),
            text,
            table,
        };
        // One file serves every command, so any setting may be in it; a command reads its own.
        let known: BTreeSet<&str> = ALL.iter().map(|s| s.name()).collect();
        if let Some(key) = file.table.keys().find(|k| !known.contains(k.as_str())) {
            let known: Vec<_> = known.into_iter().collect();
            return Err(BootError::Config(format!(
                "{}:{}: unknown setting `{key}`; known settings are: {}",
                path.display(),
                file.line_of(key),
                known.join(", ")
            )));
        }
        Ok(file)
    }

    /// The 1-based line where `key` is assigned (the table itself keeps no positions).
    fn line_of(&self, key: &str) -> usize {
        self.text
            .lines()
            .position(|l| {
                let l = l.trim_start();
                l.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
            .map_or(1, |i| i + 1)
    }
}

fn line_suffix(text: &str, offset: Option<usize>) -> String {
    offset
        .map(|o| {
            format!(
                " (line {})",
                text[..o.min(text.len())].lines().count().max(1)
            )
        })
        .unwrap_or_default()
}

/// Resolves settings from the command line, the file and the defaults.
pub struct Layers<'a> {
    scopes: &'a [Scope],
    given: Option<&'a BTreeMap<&'static str, (String, Origin)>>,
    file: Option<ConfigFile>,
}

impl<'a> Layers<'a> {
    pub fn read<U>(given: &'a Given<U>) -> Result<Self, BootError> {
        Ok(Layers {
            scopes: given.scopes,
            given: Some(&given.values),
            file: given.config.as_deref().map(ConfigFile::read).transpose()?,
        })
    }

    /// Nothing set: every setting at its default.
    pub fn defaults() -> Layers<'static> {
        Layers {
            scopes: &[],
            given: None,
            file: None,
        }
    }

    /// A setting's text and where it came from. Settings outside the command's scopes keep
    /// their defaults (the command has no flag for them and ignores them in the file).
    fn raw<T>(&self, setting: &Setting<T>) -> (String, Origin) {
        if !self.scopes.contains(&setting.scope) {
            return (setting.default.to_string(), Origin::Default);
        }
        if let Some(given) = self.given.and_then(|g| g.get(setting.name)) {
            return given.clone();
        }
        if let Some(file) = &self.file {
            if let Some(value) = file.table.get(setting.name) {
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let origin = Origin::File {
                    path: file.path.clone(),
                    line: file.line_of(setting.name),
                };
                return (text, origin);
            }
        }
        (setting.default.to_string(), Origin::Default)
    }

    /// A setting's value.
    pub fn get<T>(&self, setting: &Setting<T>) -> Result<T, BootError> {
        let (text, _) = self.raw(setting);
        (setting.parse)(text.trim()).map_err(|why| self.refuse(setting, why))
    }

    /// The error for a value that parsed but breaks a rule involving other settings.
    pub fn refuse<T>(&self, setting: &Setting<T>, why: impl fmt::Display) -> BootError {
        let (_, origin) = self.raw(setting);
        BootError::Config(format!(
            "invalid setting `{}` ({origin}): {why}; expected {}",
            setting.name, setting.expected
        ))
    }
}

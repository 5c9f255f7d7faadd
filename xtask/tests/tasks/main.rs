//! Black-box tests of `cargo xtask` tasks: the built xtask binary run as a user runs it. One
//! test binary, a module per task. `deploy::` and `release::` need Docker and minutes: they are
//! `#[ignore]`d and run by their `cargo xtask ci` steps.

mod support;

mod deploy;
mod dev;
mod docker_errors;
mod release;
mod setup;

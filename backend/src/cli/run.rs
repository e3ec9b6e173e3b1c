//! `meshlog run` (being built by the simulator work; placeholder so the binary compiles).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("meshlog run is not built yet")
}

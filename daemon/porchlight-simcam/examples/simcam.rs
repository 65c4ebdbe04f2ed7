//! Standalone simulated camera, same flags as `porchlight simcam`:
//! `cargo run --release -p porchlight-simcam --example simcam -- --clip hd`.

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: porchlight_simcam::SimCamArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    porchlight_simcam::run_cli(Cli::parse().args).await
}

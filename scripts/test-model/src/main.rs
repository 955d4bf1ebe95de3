//! `cm-test-model` binary: runs the test model until SIGINT or SIGTERM. See `--help`.

mod cli;

use std::io::Write as _;
use std::process::ExitCode;

use cm_test_model::Config;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Command::Help) => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Ok(cli::Command::Serve(config)) => match run(config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cm-test-model: {e:#}");
                ExitCode::FAILURE
            }
        },
        Err(message) => {
            eprintln!("cm-test-model: {message}\n\n{}", cli::USAGE);
            ExitCode::from(2)
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let model = cm_test_model::spawn_with(config).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "cm-test-model listening on http://{}", model.addr())?;
        stdout.flush()?;
    }
    wait_for_signal().await?;
    model.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}

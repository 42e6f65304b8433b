//! Serves the four benchmark subgraphs (accounts, inventory, products, reviews) on consecutive
//! ports, or prints one's SDL. `--shape public` serves the public graphql-gateways-benchmark's
//! schema and data sizes instead of ours.
//!
//!     federation-subgraphs [--shape ours|public] [--port 4201]   accounts on 4201, …
//!     federation-subgraphs [--shape ours|public] --only reviews --port 4204
//!     federation-subgraphs [--shape ours|public] --print-sdl reviews
//!
//! `--only` serves one subgraph in a process of its own, which the chaos tests kill and start
//! again.

/// mimalloc, as the `polygraph` binary uses: these subgraphs run with the allocator
/// Polygraph's own subgraphs have.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;

use polygraph_testkit::federation::{NAMES, Shape, shaped};

const USAGE: &str = "usage: federation-subgraphs [--shape ours|public] \
    [--port FIRST | --only NAME --port PORT | --print-sdl NAME]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut arguments: Vec<String> = std::env::args().skip(1).collect();
    let mut shape = Shape::Ours;
    if arguments.first().map(String::as_str) == Some("--shape") && arguments.len() >= 2 {
        shape = Shape::parse(&arguments[1]).ok_or(USAGE)?;
        arguments.drain(..2);
    }
    match arguments.as_slice() {
        [flag, name] if flag == "--print-sdl" => {
            let served = shaped(shape, name).ok_or_else(|| format!("no subgraph named {name}"))?;
            print!("{}", served.sdl());
            return Ok(());
        }
        [flag, port] if flag == "--port" => serve(shape, &NAMES, port.parse()?).await,
        [only, name, flag, port] if only == "--only" && flag == "--port" => {
            let name = NAMES
                .iter()
                .find(|known| *known == name)
                .ok_or_else(|| format!("no subgraph named {name}"))?;
            serve(shape, std::slice::from_ref(name), port.parse()?).await
        }
        [] => serve(shape, &NAMES, 4201).await,
        _ => Err(USAGE.into()),
    }
}

async fn serve(shape: Shape, names: &[&str], first: u16) -> Result<(), Box<dyn std::error::Error>> {
    for (offset, name) in names.iter().enumerate() {
        let served = shaped(shape, name).expect("NAMES are subgraphs");
        let port = first + u16::try_from(offset)?;
        let address = served
            .spawn(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .map_err(|error| format!("{name} cannot listen on port {port}: {error}"))?;
        eprintln!("{name}: http://{address}/graphql");
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}

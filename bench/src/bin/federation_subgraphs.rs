//! Serves the four benchmark subgraphs (accounts, inventory, products, reviews) on consecutive
//! ports, or prints one's SDL.
//!
//!     federation-subgraphs [--port 4201]        accounts on 4201, inventory 4202, …
//!     federation-subgraphs --print-sdl reviews

/// mimalloc, as the `polygraph` binary uses: these subgraphs run with the allocator
/// Polygraph's own subgraphs have.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;

use polygraph_testkit::federation::{NAMES, subgraph};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match arguments.as_slice() {
        [flag, name] if flag == "--print-sdl" => {
            let served = subgraph(name).ok_or_else(|| format!("no subgraph named {name}"))?;
            print!("{}", served.sdl());
            return Ok(());
        }
        [flag, port] if flag == "--port" => serve(port.parse()?).await,
        [] => serve(4201).await,
        _ => Err("usage: federation-subgraphs [--port FIRST] | --print-sdl NAME".into()),
    }
}

async fn serve(first: u16) -> Result<(), Box<dyn std::error::Error>> {
    for (offset, name) in NAMES.iter().enumerate() {
        let served = subgraph(name).expect("NAMES are subgraphs");
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

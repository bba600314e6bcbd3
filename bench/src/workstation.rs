//! The benchmark's "workstation": in-process TCP servers on 127.0.0.1 that every system under test dials.
//!
//! - `source` reads an 8-byte big-endian count, writes that many bytes, then closes (one-way throughput);
//! - `echo` writes back everything it reads (round trips, echo throughput, concurrent sessions).

use anyhow::{Context, Result};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Size of the servers' read and write buffers (the relay reads the workstation in 64 KiB chunks too).
const CHUNK: usize = 64 * 1024;

/// The addresses of the two servers; they run until the runtime stops.
#[derive(Clone, Copy, Debug)]
pub struct Workstations {
    pub source: SocketAddr,
    pub echo: SocketAddr,
}

/// Which server a connection should reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Source,
    Echo,
}

pub async fn start() -> Result<Workstations> {
    let source = serve(|stream| async move { source(stream).await }).await.context("source server")?;
    let echo = serve(|stream| async move { echo(stream).await }).await.context("echo server")?;
    Ok(Workstations { source, echo })
}

async fn serve<F, Fut>(handle: F) -> Result<SocketAddr>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(handle(stream));
        }
    });
    Ok(addr)
}

async fn source(mut stream: TcpStream) -> std::io::Result<()> {
    let mut remaining = stream.read_u64().await?;
    let chunk = vec![0x5a_u8; CHUNK];
    while remaining > 0 {
        let n = remaining.min(CHUNK as u64) as usize;
        stream.write_all(&chunk[..n]).await?;
        remaining -= n as u64;
    }
    stream.shutdown().await
}

async fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return stream.shutdown().await;
        }
        stream.write_all(&buf[..n]).await?;
    }
}

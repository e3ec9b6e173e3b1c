//! `meshlog device --name alice --http 127.0.0.1:3001 --udp 127.0.0.1:8001
//!  --peer bob@127.0.0.1:8002 --data DIR [--keys DIR]`

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use meshlog_backend::device::{self, DeviceOptions};
use meshlog_backend::store::KeySource;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    name: String,
    /// HTTP address; port 0 picks a free port (printed on start).
    #[arg(long, default_value = "127.0.0.1:3001")]
    http: SocketAddr,
    /// UDP address for the sync protocol.
    #[arg(long, default_value = "127.0.0.1:8001")]
    udp: SocketAddr,
    /// A peer as NAME@HOST:PORT; repeat for more.
    #[arg(long = "peer")]
    peers: Vec<String>,
    /// Data directory (the SQLite database and the API token live here; kept 0700).
    #[arg(long)]
    data: PathBuf,
    /// Key directory from `meshlog community new`; defaults to the data directory.
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Anti-entropy round interval.
    #[arg(long, default_value_t = 5_000)]
    sync_interval_ms: u64,
    /// Caps the database at this many 4 KiB pages; writes beyond fail as on a full disk.
    #[arg(long)]
    db_pages_max: Option<u32>,
    /// Record every input the node is given (datagrams, timeouts, appends, online changes)
    /// and a digest of its outputs to FILE, for `meshlog replay FILE --keys DIR`. Each batch
    /// is written as it happens, so a killed device loses nothing recorded.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// The recording's size limit in MiB: at the limit it stops (what came before replays).
    #[arg(long, default_value_t = 1024)]
    record_max_mib: u64,
    /// Join a community with an invite token an admin made (`POST /api/invites`): this
    /// device makes its keys, asks the inviter at the address the invite names, and starts
    /// with the inviter as its peer. Give it a keys directory of its own (the default, the
    /// data directory, is one). Already joined: the same command just starts it.
    #[arg(long, value_name = "TOKEN")]
    join: Option<String>,
    /// Forward secrecy: forget an epoch key, and the receive key it was sealed to, this many
    /// seconds after a newer epoch replaced it; a device stolen later opens nothing older.
    /// Default: keep every key. Not with `--record` (a recording does not replay it).
    #[arg(long, value_name = "SECONDS")]
    key_retention_s: Option<u64>,
    /// A person key file (`meshlog community person`): this device certifies itself as that
    /// person's once it runs, so the page shows the person and an admin can remove them with
    /// all their devices. Not with `--record` (a recording holds no membership changes).
    #[arg(long, value_name = "FILE")]
    person_key: Option<PathBuf>,
    /// Exit when process PID is no longer this one's parent. `meshlog demo` passes its own
    /// pid: a demo killed with SIGKILL cannot stop its children, and this way its devices
    /// stop on their own within `PARENT_CHECK_INTERVAL`.
    #[arg(long, value_name = "PID")]
    parent_pid: Option<u32>,
    /// The database is encrypted at rest; its key is kept in this file (64 hex digits, made
    /// on first start). Default: `db.key` in the data directory, which protects a copied
    /// database but not a stolen disk that holds both: keep it on another volume.
    #[arg(long, value_name = "FILE", conflicts_with = "passphrase_env")]
    db_key_file: Option<PathBuf>,
    /// Derive the database key from a passphrase (Argon2id) held in this environment
    /// variable, e.g. `MESHLOG_PASSPHRASE`; then no key is stored at all.
    #[arg(long, value_name = "VAR")]
    passphrase_env: Option<String>,
    /// Announce this device on the local link and make members heard there peers, so
    /// devices on one LAN find each other with no --peer (on by default; see --no-discover).
    #[arg(long, overrides_with = "no_discover")]
    discover: bool,
    /// Neither announce nor listen for announcements: only --peer and known peers are used.
    /// Implied by --record (a recording cannot replay discovery).
    #[arg(long, overrides_with = "discover")]
    no_discover: bool,
    /// The UDP port announcements are sent to and heard on; every device of a LAN must use
    /// the same one.
    #[arg(long, value_name = "PORT", default_value_t = device::discovery::DISCOVERY_PORT_DEFAULT)]
    discovery_port: u16,
    /// Do not publish this device's address record, which members pass on so that a device
    /// that knows one member finds the rest (peer exchange): then only devices told its
    /// address (--peer) or that hear it reach it. `meshlog demo` uses it for the line and
    /// ring topologies, which peer exchange would turn into a mesh.
    #[arg(long)]
    no_peer_exchange: bool,
    /// Do not introduce peers to each other for NAT hole punching, nor punch toward a peer
    /// another member introduces: then devices talk only over the links they were given.
    /// `meshlog demo` uses it for the line and ring topologies, which an introduction would
    /// short-cut on loopback.
    #[arg(long)]
    no_introductions: bool,
    /// The largest file `POST /api/files` takes, in bytes; a longer `Content-Length` is
    /// refused (413) before the body is read.
    #[arg(long, value_name = "BYTES", default_value_t = meshlog_backend::files::FILE_SIZE_MAX_BYTES_DEFAULT)]
    file_size_max: u64,
    /// File bytes per second sent to each peer at most: a cap on what this device uploads
    /// to one peer (a slow or metered link). 1024 to 2^40; default 64 MiB/s.
    #[arg(long, value_name = "BYTES_PER_S")]
    blob_serve_rate: Option<u64>,
    #[command(flatten)]
    server: super::ServerArgs,
}

/// How often a device started with `--parent-pid` checks its parent is still there: the
/// whole watch where the kernel cannot signal a parent's death, and on Linux the catch for a
/// parent that died before the device asked to be signalled. One `getppid` a tick.
const PARENT_CHECK_INTERVAL: Duration = Duration::from_millis(100);

pub fn options(args: Args) -> anyhow::Result<DeviceOptions> {
    let peers = args
        .peers
        .iter()
        .map(|p| device::parse_peer(p))
        .collect::<Result<Vec<_>, _>>()?;
    if args.key_retention_s.is_some() && args.record.is_some() {
        anyhow::bail!("--key-retention-s and --record do not go together: a recording does not replay forgotten keys");
    }
    if args.key_retention_s == Some(0) {
        anyhow::bail!("--key-retention-s must be at least 1");
    }
    if args.discover && args.record.is_some() {
        anyhow::bail!(
            "--discover and --record do not go together: a recording cannot replay LAN discovery"
        );
    }
    if args.discovery_port == 0 {
        anyhow::bail!(
            "--discovery-port must not be 0: every device of a LAN must use the same port"
        );
    }
    let discovery_port = if args.no_discover {
        None
    } else if args.record.is_some() {
        tracing::info!("LAN discovery is off while recording (a recording cannot replay it)");
        None
    } else {
        Some(args.discovery_port)
    };
    Ok(DeviceOptions {
        name: args.name,
        http_addr: args.http,
        udp_addr: args.udp,
        peers,
        keys_dir: args.keys.unwrap_or_else(|| args.data.clone()),
        data_dir: args.data,
        sync_interval_ms: args.sync_interval_ms,
        db_pages_max: args.db_pages_max,
        server: args.server.options(),
        record: args.record.map(|path| (path, args.record_max_mib << 20)),
        key_retention: args.key_retention_s.map(meshlog_core::Duration::from_secs),
        db_key: match (args.db_key_file, args.passphrase_env) {
            (_, Some(var)) => KeySource::PassphraseEnv(var),
            (Some(path), None) => KeySource::File(path),
            (None, None) => KeySource::DataDir,
        },
        discovery_port,
        peer_exchange: !args.no_peer_exchange,
        introductions: !args.no_introductions,
        file_size_max_bytes: args.file_size_max,
        blob_serve_rate_bytes_per_s: args.blob_serve_rate,
    })
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing();
    let parent_pid = args.parent_pid;
    let join = args.join.clone();
    if args.person_key.is_some() && args.record.is_some() {
        anyhow::bail!(
            "--person-key and --record do not go together: a recording holds no membership changes"
        );
    }
    let person = match &args.person_key {
        Some(path) => Some(meshlog_backend::keys::load_person(path)?),
        None => None,
    };
    let mut options = options(args)?;
    if parent_pid.is_some() {
        die_with_parent();
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        if let Some(parent_pid) = parent_pid {
            tokio::spawn(exit_without_parent(parent_pid));
        }
        if let Some(token) = join {
            let (inviter, address) = device::join::join(&options, &token).await?;
            if !options.peers.iter().any(|(name, _)| *name == inviter) {
                options.peers.push((inviter, address));
            }
        }
        let running = device::start(options.clone()).await?;
        if let Some(person) = person {
            let name = person.name().to_string();
            // Refused (a removed device, a person name bound to another key): say so and
            // run on; the device works without a person.
            match running.state.certify(person).await {
                Ok(()) => {
                    tracing::info!(person = %name, "this device is certified as the person's")
                }
                Err(err) => tracing::warn!(person = %name, error = %err.message, "not certified"),
            }
        }
        super::print_token(
            &format!("meshlog device {}", options.name),
            &running.token,
            &options.data_dir,
        );
        // One line tests and the demo read to learn the bound ports.
        println!(
            "meshlog device {} listening http=http://{} udp={}",
            options.name, running.http_addr, running.udp_addr
        );
        std::io::stdout().flush()?;
        running.server.await??;
        Ok(ExitCode::SUCCESS)
    })
}

/// On Linux, asks the kernel for SIGTERM (whose default ends the process at once: a device
/// sets no handler for it) when the parent dies, so a SIGKILLed demo's devices go with it,
/// not a check interval later. The kernel sends it when the parent's *thread* that started
/// this process exits: `meshlog demo` starts devices from its runtime's worker threads, which
/// live as long as it. Done on the main thread, which lives as long as the device.
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    if let Err(err) =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
    {
        tracing::warn!(%err, "cannot ask to be signalled when the parent dies; polling only");
    }
}

/// Exits once `parent_pid` is not this process's parent any more (it died and this process
/// was handed to init or a subreaper), including when it died before this device started.
/// Exiting is a crash as far as the store goes, which loses nothing acknowledged.
async fn exit_without_parent(parent_pid: u32) {
    let mut ticks = tokio::time::interval(PARENT_CHECK_INTERVAL);
    loop {
        ticks.tick().await;
        let parent = rustix::process::getppid().map_or(0, |pid| pid.as_raw_nonzero().get());
        if u32::try_from(parent).ok() != Some(parent_pid) {
            tracing::warn!(
                parent_pid,
                "the process that started this device is gone; exiting"
            );
            std::process::exit(0);
        }
    }
}

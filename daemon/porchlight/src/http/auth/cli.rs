//! `porchlight user add|list|remove|passwd`: owner accounts from a shell.
//! Works on the accounts file directly, so it works whether the daemon runs
//! or not (the daemon notices the change at the next request).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;

use anyhow::{bail, Context};

use super::accounts::AccountStore;

/// What the owner asked for.
pub enum UserAction<'a> {
    Add {
        name: &'a str,
        password_file: Option<&'a Path>,
    },
    List,
    Remove {
        name: &'a str,
    },
    Passwd {
        name: &'a str,
        password_file: Option<&'a Path>,
    },
}

/// Runs `action` on the accounts of `data_dir`; returns what to print.
pub fn run(data_dir: &Path, action: UserAction<'_>) -> anyhow::Result<String> {
    if !data_dir.is_dir() {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
    }
    let store = AccountStore::new(data_dir);
    match action {
        UserAction::Add {
            name,
            password_file,
        } => {
            super::accounts::check_name(name)?;
            if store.get(name).is_some() {
                bail!("an owner account named `{name}` exists already (`porchlight user passwd {name}` sets a new password)");
            }
            let password = read_password(password_file, name)?;
            store.add(name, &password)?;
            Ok(format!(
                "added owner account `{name}`: the owner API and web UI now need a login \
                 (the porchlight CLI on this box keeps working through {})",
                data_dir.join(super::CLI_TOKEN_FILE).display()
            ))
        }
        UserAction::List => {
            let accounts = store.accounts()?;
            if accounts.is_empty() {
                return Ok("no owner accounts (open local mode: only this computer can reach the owner API)".into());
            }
            Ok(accounts
                .iter()
                .map(|a| format!("{}\tcreated {}", a.name, a.created))
                .collect::<Vec<_>>()
                .join("\n"))
        }
        UserAction::Remove { name } => {
            store.remove(name)?;
            let left = store.accounts()?.len();
            Ok(format!(
                "removed owner account `{name}` (its sessions end){}",
                if left == 0 {
                    "; no accounts are left: the owner API is open to this computer again, \
                     and a daemon bound to a LAN address will refuse to start"
                } else {
                    ""
                }
            ))
        }
        UserAction::Passwd {
            name,
            password_file,
        } => {
            if store.get(name).is_none() {
                bail!("no owner account named `{name}` (`porchlight user list` shows them)");
            }
            let password = read_password(password_file, name)?;
            store.set_password(name, &password)?;
            Ok(format!("new password set for `{name}` (its sessions end)"))
        }
    }
}

/// The password from `--password-file`, a prompt (twice, not echoed) on a
/// terminal, or the first line of standard input.
fn read_password(password_file: Option<&Path>, name: &str) -> anyhow::Result<String> {
    let password = if let Some(path) = password_file {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    } else if std::io::stdin().is_terminal() {
        let first = prompt(&format!("password for {name}: "))?;
        super::accounts::check_password(name, &first)?;
        let again = prompt("the same again: ")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    super::accounts::check_password(name, &password)?;
    Ok(password)
}

/// Reads one line from the terminal with echo off.
fn prompt(text: &str) -> anyhow::Result<String> {
    eprint!("{text}");
    std::io::stderr().flush().ok();
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data; tcgetattr fills it for a terminal fd.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let have_tty = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if have_tty {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: a valid termios for the same fd.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if have_tty {
        // SAFETY: restores what tcgetattr returned.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    eprintln!();
    read.context("cannot read the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

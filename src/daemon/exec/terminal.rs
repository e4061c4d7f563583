//! An exec with Tty: the daemon opens a pseudo-terminal and starts the command (`runc exec
//! --tty`, or the host process) on its slave, as its controlling terminal in a session of its
//! own. The master is the exec's one output stream and its input; a resize sets the master's
//! size, and the kernel's SIGWINCH tells runc, which passes the size on to the terminal it made
//! in the container. Like the exec itself, the terminal is the daemon's: it is not promised to
//! survive a daemon restart (a container's own terminal is the shim's).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use tokio::net::unix::pipe;

use crate::shim::console;

/// The daemon's end of an exec's terminal.
pub struct Terminal {
    /// The master, kept for resizes.
    pub master: Arc<OwnedFd>,
    /// What the command writes.
    pub output: pipe::Receiver,
    /// What the client types.
    pub input: pipe::Sender,
    /// The slave: to be dropped once the command is spawned (its copies are the command's).
    pub slave: OwnedFd,
}

/// Opens a terminal of `size` (`[0, 0]`: the default) and sets `cmd` up to run on it.
pub fn open(cmd: &mut tokio::process::Command, size: [u16; 2]) -> io::Result<Terminal> {
    let pty = console::open_pty()?;
    let [height, width] = size;
    if height > 0 && width > 0 {
        console::set_size(pty.master.as_fd(), height, width)?;
    }
    console::on_terminal(cmd.as_std_mut(), &pty.slave)?;
    let dup = || console::dup_nonblocking(pty.master.as_fd()).map(OwnedFd::from);
    Ok(Terminal {
        output: pipe::Receiver::from_owned_fd_unchecked(dup()?)?,
        input: pipe::Sender::from_owned_fd_unchecked(dup()?)?,
        master: Arc::new(pty.master),
        slave: pty.slave,
    })
}

/// Sets the terminal's size.
pub fn resize(master: &OwnedFd, height: u16, width: u16) -> io::Result<()> {
    Ok(console::set_size(master.as_fd(), height, width)?)
}

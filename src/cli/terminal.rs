//! The local terminal's size (TIOCGWINSZ), for `-t`: sent as ConsoleSize at create and as
//! resizes while attached.

use std::os::fd::AsRawFd;

/// `(height, width)` of the terminal on stdout (else stdin); None without one, or when the
/// terminal reports no size (a pty nobody sized).
pub fn size() -> Option<(u16, u16)> {
    let fds = [std::io::stdout().as_raw_fd(), std::io::stdin().as_raw_fd()];
    fds.into_iter().find_map(|fd| {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points to a
        // live local; `fd` is one of this process's standard descriptors (a bad one gives
        // ENOTTY or EBADF, not undefined behaviour).
        let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
        (r == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
    })
}

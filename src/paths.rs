//! TEMP placeholder (replaced by the cli branch).
use std::path::PathBuf;
pub struct Paths {
    pub config: PathBuf,
    pub root: PathBuf,
    pub run_dir: PathBuf,
    pub socket: PathBuf,
}
impl Paths {
    pub fn default_for_current_user() -> Paths {
        Paths {
            config: "/etc/moor/daemon.json".into(),
            root: "/var/lib/moor".into(),
            run_dir: "/run/moor".into(),
            socket: "/run/moor/moor.sock".into(),
        }
    }
}

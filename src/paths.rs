//! Default paths: /etc/moor, /var/lib/moor, /run/moor as root, XDG directories otherwise.

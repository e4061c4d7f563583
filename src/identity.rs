//! Process identity: (pid, start time, boot id), checked before anything is signalled, and pidfds.

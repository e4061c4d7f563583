//! The daemon: the Supervisor actor, one Container actor per container, the reconciler.

//! The store's schema version and its forward migrations.

/// The schema version this build writes. Older stores are migrated forward at open.
pub const SCHEMA_VERSION: u32 = 1;

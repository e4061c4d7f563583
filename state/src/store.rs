//! The sled store: typed trees `containers` (id -> record), `names` (name -> id) and
//! `meta` (schema version). Every write is flushed before it returns.

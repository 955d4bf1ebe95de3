//! Bodies of the offline prompt queue operations the relay answers itself.

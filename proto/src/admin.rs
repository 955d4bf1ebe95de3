//! Bodies of the administration operations the relay answers itself (users, grants, hosts, credentials, kill switch, audit).

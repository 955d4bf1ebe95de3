//! Bodies of the folder operations (`fs_*`) the agent serves beneath a workspace root.

//! Bodies of the git operations (`git_*`) the agent serves inside a workspace.

//! Placeholder: the custom guest example is being written.

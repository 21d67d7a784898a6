"""HELMET judge prompts copied byte-exact from upstream (see ../SOURCE.md); a package so wheels ship them."""

"""HELMET run configurations copied byte-exact from upstream (see ../SOURCE.md); a package so wheels ship them."""

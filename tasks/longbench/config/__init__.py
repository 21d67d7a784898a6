"""LongBench v1's three official config files, byte-exact copies (see ../SOURCE.md). Data only; this file
makes the folder a package so the ``.json`` files ship in the wheel."""

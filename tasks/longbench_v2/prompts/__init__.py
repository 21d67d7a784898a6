"""LongBench v2's five official prompt files, byte-exact copies (see ../SOURCE.md). Data only; this file
makes the folder a package so the ``.txt`` files ship in the wheel."""

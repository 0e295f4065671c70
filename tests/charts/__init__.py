"""Rendered-manifest tests of the charts (a package so modules can share helpers from conftest)."""

"""Tests of the system agents."""

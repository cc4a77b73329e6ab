"""Hostile inputs and abusive clients (issue 18): each case a real file or request, bounded,
on loopback, asserting status, time and memory."""

"""The read side: queries for the API, the pages, the admin and the commands. Nothing here
writes (docs/design.md, "Apps and layers")."""

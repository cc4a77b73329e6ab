"""The server-rendered pages: thin views over jobs.services and jobs.selectors."""

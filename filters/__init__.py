"""Built-in curate plugins, registered through the `curate.filters` entry-point group."""

"""Floor 2: connecting to Ray, the keep-alive head, and which physical host is which."""

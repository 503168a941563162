"""`oneword inspect`: what a file is, whether it is safe to load, which tools load it, and conversions for them."""

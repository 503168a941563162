"""`oneword ui`: a web UI (Gradio) over the same library functions and configs as the command line."""

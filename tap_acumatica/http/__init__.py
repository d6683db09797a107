"""HTTP for the tap: the GET client (retries, deadlines) and Acumatica's error answers."""

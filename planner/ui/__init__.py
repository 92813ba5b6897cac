"""Streamlit dashboard: sidebar state, cached views and one file per page."""

"""kvplan dashboard: `streamlit run app.py`. A thin router: the sidebar and the pages call
planner; nothing is computed here."""

from __future__ import annotations

import streamlit as st

from planner.ui.state import sidebar

st.set_page_config(page_title="kvplan", layout="wide")
PAGES = "planner/ui/pages"
navigation = st.navigation(
    [
        st.Page(f"{PAGES}/capacity.py", title="Capacity", default=True),
        st.Page(f"{PAGES}/frontier.py", title="Frontier"),
        st.Page(f"{PAGES}/cost.py", title="Cost"),
        st.Page(f"{PAGES}/search.py", title="Search"),
        st.Page(f"{PAGES}/simulate.py", title="Simulate"),
        st.Page(f"{PAGES}/compare.py", title="Compare"),
        st.Page(f"{PAGES}/migration.py", title="Migration"),
    ]
)
sidebar()
navigation.run()

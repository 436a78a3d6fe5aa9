import streamlit as st
st.title("gating_vs_linear")

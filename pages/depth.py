import streamlit as st
st.title("depth")

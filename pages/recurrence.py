import streamlit as st
st.title("recurrence")
